//! Faults during a restore: SIGKILL at random moments, running out of
//! space, a read-only parent, two restores racing for one data dir, and
//! inputs that are not regular files.

use crate::support;

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
    sigkill_at_random_moments(&[]);
}

/// The same with the member db laid out anew (`--compact`, `--defrag`).
#[test]
fn sigkill_during_a_compacting_restore_leaves_nothing_or_a_complete_dir() {
    sigkill_at_random_moments(&["--compact=550", "--defrag"]);
}

/// Kills restores (with `extra` flags) at random moments: each leaves
/// nothing or a complete data dir.
fn sigkill_at_random_moments(extra: &[&str]) {
    let snap = fixtures::snapshot("k8s-v35.db");
    let work = tempfile::tempdir().expect("tempdir");
    // How long a whole restore takes here.
    let probe = work.path().join("probe.etcd");
    let t = Instant::now();
    let mut probe_args = vec!["--data-dir", probe.to_str().expect("utf-8")];
    probe_args.extend(extra);
    let o = restore_cmd(&snap, &probe_args).output().expect("run");
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
        let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
        argv.extend(extra);
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

/// The signals every staging command cleans up on (SIGHUP: a dropped SSH
/// session).
const SIGNALS: [(i32, &str); 4] = [
    (libc::SIGINT, "SIGINT"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGQUIT, "SIGQUIT"),
];

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) on a process this test started and has not reaped.
    let r = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({pid}, {sig})");
}

/// Runs `cmd` (a restore into `parent/d.etcd`), stops it (SIGSTOP) while
/// its hidden staging dir exists in `parent`, sends `sig`, lets it go on,
/// and returns its stderr, exit status and the staging dir's name; `None`
/// when the restore finished before it could be caught.
fn interrupt_while_staging(
    mut cmd: Command,
    parent: &Path,
    sig: i32,
) -> Option<(String, std::process::ExitStatus, String)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    let staged = loop {
        let names = names_in(parent);
        if let Some(n) = names.iter().find(|n| n.contains(".etcdsnap-")) {
            signal(child.id(), libc::SIGSTOP);
            if parent.join("d.etcd").exists() {
                // Caught while publishing: not mid-way.
                signal(child.id(), libc::SIGCONT);
                let _ = child.wait_with_output();
                return None;
            }
            break n.clone();
        }
        if child.try_wait().expect("wait").is_some() {
            let _ = child.wait_with_output();
            return None;
        }
        assert!(Instant::now() < deadline, "no staging dir after 60 s");
        std::thread::sleep(Duration::from_micros(100));
    };
    signal(child.id(), sig);
    signal(child.id(), libc::SIGCONT);
    let (status, timed_out) = cmd::wait_deadline(&mut child, Duration::from_secs(60));
    assert!(!timed_out, "still running 60 s after the signal");
    let o = child.wait_with_output().expect("output");
    Some((err_of(&o), status.expect("exit status"), staged))
}

/// Each signal during a restore: the staged dir is removed, stderr says
/// so in one line, the exit code is 128 + the signal, and nothing else is
/// left. (The default action of each signal used to kill the restore and
/// leave the hidden dir, as big as the data.)
#[track_caller]
fn assert_signals_clean_up(make: &dyn Fn(&Path) -> Command) {
    for (sig, name) in SIGNALS {
        let mut caught = false;
        for attempt in 0..10 {
            let work = tempfile::tempdir().expect("tempdir");
            let parent = work.path().join("p");
            std::fs::create_dir(&parent).expect("mkdir");
            let Some((err, status, staged)) =
                interrupt_while_staging(make(&parent.join("d.etcd")), &parent, sig)
            else {
                println!("{name}: attempt {attempt} finished before the signal");
                continue;
            };
            caught = true;
            assert_eq!(status.code(), Some(128 + sig), "{name}: {err}");
            assert_eq!(
                err,
                format!(
                    "Error: interrupted by {name}, nothing restored (removed {})\n",
                    parent.join(&staged).display()
                ),
                "{name}"
            );
            assert!(
                names_in(&parent).is_empty(),
                "{name}: left {:?}",
                names_in(&parent)
            );
            break;
        }
        assert!(caught, "{name}: never caught a restore mid-way");
    }
}

#[test]
fn signals_during_snapshot_restore_remove_the_staged_dir() {
    let snap = fixtures::snapshot("k8s-v35.db");
    assert_signals_clean_up(&|d| restore_cmd(&snap, &["--data-dir", d.to_str().expect("utf-8")]));
}

#[test]
fn signals_during_backup_restore_remove_the_staged_dir() {
    let work = tempfile::tempdir().expect("tempdir");
    let repo = work.path().join("repo");
    let run = |args: &[&str]| {
        let o = Command::new(BIN).args(args).output().expect("run");
        assert!(o.status.success(), "{args:?}: {}", err_of(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let repo_s = repo.to_str().expect("utf-8");
    run(&["backup", "init", repo_s]);
    let snap = fixtures::snapshot("k8s-v35.db");
    run(&["backup", "push", repo_s, snap.to_str().expect("utf-8")]);
    let listed: serde_json::Value =
        serde_json::from_str(&run(&["backup", "ls", repo_s, "-w", "json"])).expect("json");
    let id = listed[0]["id"].as_str().expect("an id").to_string();
    assert_signals_clean_up(&|d| {
        let mut c = Command::new(BIN);
        c.args(["backup", "restore", repo_s, &id, "--data-dir"])
            .arg(d);
        c
    });
}

/// Each signal while `backup push` has an object half-written in the
/// repository's `tmp/`: the push stops at once, removes it and says so
/// (the next command would otherwise find it as a stale leftover).
#[test]
fn signals_during_backup_push_remove_its_temporary_object() {
    let snap = fixtures::snapshot("k8s-v35.db");
    for (sig, name) in SIGNALS {
        let mut caught = false;
        for attempt in 0..20 {
            let work = tempfile::tempdir().expect("tempdir");
            let repo = work.path().join("repo");
            let init = Command::new(BIN)
                .args(["backup", "init"])
                .arg(&repo)
                .output()
                .expect("init");
            assert!(init.status.success(), "{}", err_of(&init));
            let tmp = repo.join("tmp");
            let mut child = Command::new(BIN)
                .args(["backup", "push"])
                .arg(&repo)
                .arg(&snap)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            let deadline = Instant::now() + Duration::from_secs(60);
            let staged = loop {
                if let Some(n) = names_in(&tmp).into_iter().next() {
                    signal(child.id(), libc::SIGSTOP);
                    wait_stopped(child.id());
                    if tmp.join(&n).exists() {
                        break Some(n);
                    }
                    signal(child.id(), libc::SIGCONT);
                }
                if child.try_wait().expect("wait").is_some() {
                    break None;
                }
                assert!(Instant::now() < deadline, "push still running after 60 s");
                std::thread::sleep(Duration::from_micros(100));
            };
            let Some(staged) = staged else {
                let _ = child.wait_with_output();
                println!("{name}: attempt {attempt} finished before the signal");
                continue;
            };
            caught = true;
            signal(child.id(), sig);
            signal(child.id(), libc::SIGCONT);
            let (status, timed_out) = cmd::wait_deadline(&mut child, Duration::from_secs(60));
            assert!(!timed_out, "{name}: still running 60 s after the signal");
            let o = child.wait_with_output().expect("output");
            let err = err_of(&o);
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(128 + sig),
                "{name}: {err}"
            );
            // The push may still publish the object, and even stage the next
            // one, in the moment before the signal thread takes the cleanup
            // lock (a loaded machine gives it that moment); either way the
            // object it removes is one of its own in tmp/, and nothing
            // half-written stays.
            assert!(
                err.contains(&format!("interrupted by {name}"))
                    && (err.contains(&format!("(removed {}/", tmp.display()))
                        || err.contains("nothing to remove")),
                "{name}: {staged}: {err}"
            );
            assert!(
                names_in(&tmp).is_empty(),
                "{name}: left {:?}",
                names_in(&tmp)
            );
            break;
        }
        assert!(
            caught,
            "{name}: never caught a push with an object half-written"
        );
    }
}

/// Waits until every thread of `pid` has stopped (kill(2) returns before
/// SIGSTOP takes effect, so a rename could still happen after it).
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let tasks = PathBuf::from(format!("/proc/{pid}/task"));
    loop {
        let all_stopped = std::fs::read_dir(&tasks).is_ok_and(|d| {
            d.flatten().all(|t| {
                std::fs::read_to_string(t.path().join("stat"))
                    .ok()
                    .and_then(|st| {
                        st.rsplit_once(')')
                            .map(|(_, r)| r.trim_start().starts_with('T'))
                    })
                    .unwrap_or(true)
            })
        });
        if all_stopped || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
