//! Faults during a restore: SIGKILL at random moments, running out of
//! space, a read-only parent, two restores racing for one data dir, and
//! inputs that are not regular files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use etcdsnap::DataDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use etcdsnap::raft::wal::read_segment_file;
use support::etcd::ClusterSpec;
use support::fixtures::names_in;
use support::{cmd, fixtures, tools};

const BIN: &str = env!("CARGO_BIN_EXE_etcdsnap");

fn restore_cmd(snapshot: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(["snapshot", "restore"]).arg(snapshot).args(args);
    c
}

/// A data dir written by a restore: db sound, WAL and .snap readable.
fn assert_complete(d: &Path) {
    let layout = DataDir::new(d);
    let db = layout.db_path();
    let st = Command::new(BIN)
        .args(["snapshot", "verify", "--skip-hash-check"])
        .arg(&db)
        .output()
        .expect("verify");
    assert!(
        st.status.success(),
        "{}: {}",
        db.display(),
        String::from_utf8_lossy(&st.stdout)
    );
    let wal = layout
        .wal_dir()
        .join("0000000000000000-0000000000000000.wal");
    assert_eq!(std::fs::metadata(&wal).expect("wal").len(), 64_000_000);
    let records = read_segment_file(&wal).expect("WAL decodes");
    assert!(records.len() >= 5, "{} records", records.len());
    let snaps = names_in(&layout.snap_dir());
    assert!(
        snaps
            .iter()
            .any(|n| n.starts_with("0000000000000001-") && n.ends_with(".snap")),
        "{snaps:?}"
    );
}

fn err_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Deterministic pseudo-random numbers (xorshift).
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

#[test]
fn sigkill_at_random_moments_leaves_nothing_or_a_complete_dir() {
    let snap = fixtures::snapshot("k8s-v35.db");
    let work = tempfile::tempdir().expect("tempdir");
    // How long a whole restore takes here.
    let probe = work.path().join("probe.etcd");
    let t = Instant::now();
    let o = restore_cmd(&snap, &["--data-dir", probe.to_str().expect("utf-8")])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", err_of(&o));
    let full = t.elapsed();
    std::fs::remove_dir_all(&probe).expect("rm");

    // Single-member runs restore for a member whose ports are reserved, so
    // a surviving dir can be booted at the end.
    let bins = tools::require(tools::etcd_suite(tools::EtcdVersion::V35));
    let spec = bins.as_ref().map(|b| ClusterSpec::new(b, 1));
    let member: Vec<String> = match &spec {
        Some(s) => vec![
            "--name".into(),
            s.members[0].name.clone(),
            "--initial-cluster".into(),
            s.initial_cluster(),
            "--initial-advertise-peer-urls".into(),
            s.members[0].peer_url(),
            "--initial-cluster-token".into(),
            s.token.clone(),
        ],
        None => vec![
            "--initial-cluster".into(),
            "default=http://127.0.0.1:2380".into(),
            "--initial-advertise-peer-urls".into(),
            "http://127.0.0.1:2380".into(),
        ],
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut absent, mut complete) = (0, 0);
    let mut a_complete_dir: Option<PathBuf> = None;
    for i in 0..24 {
        let parent = work.path().join(format!("run{i}"));
        std::fs::create_dir(&parent).expect("mkdir");
        let all = i % 3 == 2;
        let (target, args): (PathBuf, Vec<String>) = if all {
            let out = parent.join("out");
            (
                out.clone(),
                vec![
                    "--all-members".into(),
                    "--out-dir".into(),
                    out.display().to_string(),
                    "--initial-cluster".into(),
                    "a=http://127.0.0.1:2380,b=http://127.0.0.2:2380,c=http://127.0.0.3:2380"
                        .into(),
                ],
            )
        } else {
            let d = parent.join("d.etcd");
            let mut a = vec!["--data-dir".into(), d.display().to_string()];
            a.extend(member.iter().cloned());
            (d.clone(), a)
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let delay = Duration::from_micros(rng.below(full.as_micros() as u64 * 6 / 5));
        let mut child = restore_cmd(&snap, &argv)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();

        if target.exists() {
            complete += 1;
            if all {
                for m in ["a", "b", "c"] {
                    assert_complete(&target.join(format!("{m}.etcd")));
                }
            } else {
                assert_complete(&target);
                a_complete_dir.get_or_insert(target.clone());
            }
        } else {
            absent += 1;
            // The same command now succeeds, and cleans up after the killed one.
            let o = restore_cmd(&snap, &argv).output().expect("rerun");
            assert!(o.status.success(), "rerun {i}: {}", err_of(&o));
        }
        assert_eq!(
            names_in(&parent),
            [target
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()],
            "run {i}: leftovers"
        );
    }
    assert!(
        absent > 0,
        "no kill landed before the end ({complete} complete)"
    );

    // A dir that survived a kill boots.
    if let (Some(d), Some(spec)) = (a_complete_dir, spec) {
        let c = spec.data_dir(0, &d).start();
        let kvs = c.ctl().json(&["get", "", "--prefix", "--keys-only"]);
        let n = kvs["kvs"].as_array().map_or(0, Vec::len);
        assert!(n > 1000, "the restored member serves {n} keys");
    }
}

#[test]
fn running_out_of_space_fails_cleanly() {
    let snap = fixtures::snapshot("k8s-v35.db");
    // 5 MB: the db copy fails; 20 MB: the db fits, the 64 MB WAL does not.
    for limit in [5_000_000u64, 20_000_000] {
        let work = tempfile::tempdir().expect("tempdir");
        let d = work.path().join("d.etcd");
        // A file size limit sends SIGXFSZ; with the signal ignored (as a
        // disk that is full does) the write fails with an error instead.
        let script = format!(
            "trap '' XFSZ; exec {} snapshot restore {} --data-dir {}",
            BIN,
            snap.display(),
            d.display()
        );
        let o = Command::new("prlimit")
            .arg(format!("--fsize={limit}"))
            .args(["sh", "-c", &script])
            .output()
            .expect("prlimit");
        let err = err_of(&o);
        assert_eq!(o.status.code(), Some(1), "limit {limit}: {err}");
        assert!(
            err.starts_with("Error: ") && err.contains("too large"),
            "limit {limit}: {err}"
        );
        assert!(
            names_in(work.path()).is_empty(),
            "limit {limit}: left {:?}",
            names_in(work.path())
        );
    }
}

#[test]
fn a_full_file_system_fails_cleanly() {
    let work = tempfile::tempdir().expect("tempdir");
    let mnt = work.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!(
            "skipping: cannot mount a tmpfs here (needs CAP_SYS_ADMIN); running_out_of_space_fails_cleanly covers the error path"
        );
        return;
    }
    let d = mnt.join("d.etcd");
    let o = restore_cmd(
        &fixtures::snapshot("k8s-v35.db"),
        &["--data-dir", d.to_str().expect("utf-8")],
    )
    .output()
    .expect("run");
    let listing = names_in(&mnt);
    let _ = Command::new("umount").arg(&mnt).status();
    let err = err_of(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("no space left on device"), "{err}");
    assert!(listing.is_empty(), "left {listing:?}");
}

#[test]
fn a_read_only_parent_fails_cleanly() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::Builder::new()
        .prefix("etcdsnap-ro")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let snap = work.path().join("s.db");
    std::fs::copy(fixtures::snapshot("small-v35.db"), &snap).expect("copy");
    let parent = work.path().join("ro");
    std::fs::create_dir(&parent).expect("mkdir");
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let d = parent.join("d.etcd");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut c = if is_root {
        // Root ignores file modes: run as nobody.
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let o = c
        .args(["snapshot", "restore"])
        .arg(&snap)
        .arg("--data-dir")
        .arg(&d)
        .output()
        .expect("run");
    let err = err_of(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(names_in(&parent).is_empty());
    std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn two_restores_into_one_data_dir_one_wins() {
    let snap = fixtures::snapshot("k8s-v35.db");
    for round in 0..5 {
        let work = tempfile::tempdir().expect("tempdir");
        let d = work.path().join("d.etcd");
        let dd = d.to_str().expect("utf-8");
        let a = restore_cmd(&snap, &["--data-dir", dd])
            .stderr(Stdio::piped())
            .spawn()
            .expect("a");
        let b = restore_cmd(&snap, &["--data-dir", dd])
            .stderr(Stdio::piped())
            .spawn()
            .expect("b");
        let (a, b) = (
            a.wait_with_output().expect("a"),
            b.wait_with_output().expect("b"),
        );
        let wins = [&a, &b].iter().filter(|o| o.status.success()).count();
        assert_eq!(wins, 1, "round {round}: {} / {}", err_of(&a), err_of(&b));
        let loser = if a.status.success() { &b } else { &a };
        assert_eq!(loser.status.code(), Some(1));
        assert!(
            err_of(loser).contains("not empty or could not be read"),
            "{}",
            err_of(loser)
        );
        assert_complete(&d);
        assert_eq!(names_in(work.path()), ["d.etcd"], "round {round}");
    }
}

#[test]
fn inputs_that_are_not_regular_files_are_refused_at_once() {
    let work = tempfile::tempdir().expect("tempdir");
    let fifo = work.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    for (path, kind) in [
        (work.path().to_path_buf(), "is a directory"),
        (fifo, "is a FIFO"),
        (PathBuf::from("/dev/zero"), "is a character device"),
    ] {
        for sub in [
            vec!["snapshot", "status"],
            vec!["snapshot", "verify"],
            vec!["snapshot", "restore", "--data-dir", "/nonexistent-parent/x"],
        ] {
            let mut c = Command::new(BIN);
            c.args(&sub[..2]).arg(&path).args(&sub[2..]);
            let o = cmd::run(&mut c, Duration::from_secs(10));
            assert!(!o.timed_out, "{sub:?} {}: hung", path.display());
            assert_eq!(
                o.code(),
                Some(1),
                "{sub:?} {}: {}",
                path.display(),
                o.stderr
            );
            assert!(o.stderr.contains(kind), "{sub:?}: {}", o.stderr);
        }
    }
}
