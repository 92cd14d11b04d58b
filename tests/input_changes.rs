//! A snapshot that another process truncates while `restore`, `verify` or
//! `status` reads it: a clean error naming the change (never a crash by
//! SIGBUS), and a restore leaves nothing behind.
//!
//! Each command runs on a copy of the 10 MB k8s fixture that a thread cuts
//! down to its two meta pages after a delay; the delays sweep the command's
//! own running time, so some cuts land while pages are being read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::fixtures;

const BIN: &str = env!("CARGO_BIN_EXE_etcdsnap");
const CHANGED: &str = "the file changed while it was being read";

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run etcdsnap")
}

/// Runs `args` (the snapshot path last but one is `file`) while a thread
/// truncates `file` after `delay`.
fn run_while_cut(args: &[&str], file: &Path, delay: Duration) -> Output {
    let path = file.to_path_buf();
    let cutter = std::thread::spawn(move || {
        std::thread::sleep(delay);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open to truncate");
        f.set_len(8192).expect("truncate");
    });
    let out = run(args);
    cutter.join().expect("cutter");
    out
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Exit 0 or 1, no signal, no panic.
fn assert_clean(o: &Output, what: &str) {
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{what}: {:?} (SIGBUS is signal 7)\nstdout: {}\nstderr: {}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    assert!(!text(&o.stderr).contains("panicked"), "{what}");
}

/// Delays spread over how long `args` takes on an intact copy: 16 steps,
/// shifted by a fraction of a step in each later round.
fn delays(args: &[&str], round: u32) -> Vec<Duration> {
    let t = Instant::now();
    let o = run(args);
    let took = t.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let steps = 16u32;
    (0..steps)
        .map(|i| took * (4 * i + round) / (4 * steps))
        .collect()
}

/// Rounds of delays until one cut lands while the file is read.
const ROUNDS: u32 = 4;

fn fresh_copy(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("snap.db");
    std::fs::write(&p, fixtures::read_snapshot("k8s-v35.db")).expect("copy");
    p
}

#[test]
fn verify_and_status_fail_cleanly_when_the_file_is_cut_while_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    for cmd in ["verify", "status"] {
        let f = fresh_copy(dir.path()).to_str().expect("utf-8").to_owned();
        let args = ["snapshot", cmd, &f];
        let mut changed = 0;
        for round in 0..ROUNDS {
            if changed > 0 {
                break;
            }
            for delay in delays(&args, round) {
                let file = fresh_copy(dir.path());
                let o = run_while_cut(&args, &file, delay);
                let what = format!("{cmd} cut after {delay:?}");
                assert_clean(&o, &what);
                let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
                if o.status.code() == Some(1) && all.contains(CHANGED) {
                    changed += 1;
                } else if o.status.code() == Some(1) {
                    // Cut before the file was opened: an ordinary truncated file.
                    assert!(all.contains("truncated"), "{what}: {all}");
                }
            }
        }
        assert!(changed > 0, "{cmd}: no cut landed while the file was read");
    }
}

#[test]
fn restore_fails_cleanly_and_leaves_nothing_when_the_file_is_cut_while_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parent = dir.path().join("out");
    std::fs::create_dir(&parent).expect("parent");
    let f = fresh_copy(dir.path()).to_str().expect("utf-8").to_owned();
    let target = parent.join("d.etcd");
    let t = target.to_str().expect("utf-8").to_owned();
    let args = ["snapshot", "restore", &f, "--data-dir", &t];
    let mut changed = 0;
    for round in 0..ROUNDS {
        if changed > 0 {
            break;
        }
        let timing = delays(&args, round);
        std::fs::remove_dir_all(&target).expect("remove the timing run's dir");
        changed += restore_round(&args, dir.path(), &parent, &target, &timing);
    }
    assert!(changed > 0, "no cut landed while the file was read");
}

/// Restores under cuts after each delay; returns how many failed because
/// the file changed.
fn restore_round(
    args: &[&str],
    dir: &Path,
    parent: &Path,
    target: &Path,
    timing: &[Duration],
) -> usize {
    let mut changed = 0;
    for &delay in timing {
        std::fs::remove_dir_all(target).ok();
        let file = fresh_copy(dir);
        let o = run_while_cut(args, &file, delay);
        let what = format!("restore cut after {delay:?}");
        assert_clean(&o, &what);
        let left: Vec<String> = fixtures::names_in(parent);
        if o.status.code() == Some(0) {
            assert_eq!(left, ["d.etcd"], "{what}");
        } else {
            assert!(left.is_empty(), "{what}: left behind {left:?}");
            if text(&o.stderr).contains(CHANGED) {
                changed += 1;
            }
        }
    }
    changed
}
