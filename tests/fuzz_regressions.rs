//! Replays every input the fuzzers found (and the seeds they started from):
//! `testdata/fuzz-regressions/<target>/*` through the same code as
//! `cargo +nightly fuzz run <target>` (`fuzz/common/targets.rs`). Each must
//! return normally.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../fuzz/common/targets.rs"]
mod targets;

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fuzz-regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries {
        let p = e.expect("entry").path();
        let data = std::fs::read(&p).expect("read");
        eprintln!("{target}: {}", p.display());
        f(&data);
        n += 1;
    }
    n
}

#[test]
fn bolt_open_check() {
    replay("bolt_open_check", targets::bolt_open_check);
    // Every fixture, and every prefix of the small one at page boundaries.
    for f in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/snapshots"))
        .expect("fixtures")
    {
        let bytes = std::fs::read(f.expect("entry").path()).expect("read");
        targets::bolt_open_check(&bytes);
    }
}

#[test]
fn snapshot_pages() {
    replay("snapshot_pages", targets::snapshot_pages);
    // The unmodified fixtures restore and verify.
    targets::snapshot_pages(&[0]);
    targets::snapshot_pages(&[31]);
    targets::snapshot_pages(&[30]);
    targets::snapshot_pages(&[29]);
}

#[test]
fn etcd_records() {
    replay("etcd_records", targets::etcd_records);
    // The sound base alone, and a record etcd would crash on.
    targets::etcd_records(&[]);
    targets::etcd_records(&[0x81, 0, 3, 0, 1, 2, 3]);
}

#[test]
fn raft_decode() {
    replay("raft_decode", targets::raft_decode);
}

#[test]
fn cluster_parse() {
    replay("cluster_parse", targets::cluster_parse);
    targets::cluster_parse(
        b"m1=http://127.0.0.1:2380,m2=http://127.0.0.2:2380\0http://127.0.0.1:2380\0m1\0tok",
    );
}

#[test]
fn repo_open() {
    // The library catches a panic inside redb and reports damage; libFuzzer
    // would abort on it all the same, so any panic at all fails this test.
    static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, std::sync::atomic::Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    replay("repo_open", targets::repo_open);
    // Every file of the repository, unchanged, flipped in many places, cut
    // short and replaced by garbage.
    for file in 0u8..16 {
        targets::repo_open(&[file]);
        let mut flips = vec![file];
        for i in 0u16..32 {
            flips.extend_from_slice(&(i.wrapping_mul(2477)).to_le_bytes());
            flips.extend_from_slice(&[7, 0x5a]);
        }
        targets::repo_open(&flips);
        targets::repo_open(&[file | 0x80]);
        targets::repo_open(&[file | 0x80, 0xff, 0, 1, 2, 3]);
    }
    let _ = std::panic::take_hook();
    std::panic::set_hook(previous);
    assert!(
        !PANICKED.load(std::sync::atomic::Ordering::SeqCst),
        "a repository operation panicked"
    );
}

#[test]
fn k8s_values() {
    replay("k8s_values", targets::k8s_values);
    targets::k8s_values(b"\x0a\x06\x0a\x02v1\x12\x00\x12\x04\x0a\x02\x0a\x00");
}

#[test]
fn bolt_load() {
    replay("bolt_load", targets::bolt_load);
    // Copy every fixture that is a bare bbolt file.
    for f in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/snapshots"))
        .expect("fixtures")
    {
        let p = f.expect("entry").path();
        if p.extension().is_some_and(|e| e == "db") {
            let mut data = vec![0x73];
            data.extend(std::fs::read(&p).expect("read"));
            targets::bolt_load(&data);
        }
    }
}

#[test]
fn repo_deltas() {
    replay("repo_deltas", targets::repo_deltas);
    // The sound object unmodified, and a few bodies.
    targets::repo_deltas(&[]);
    targets::repo_deltas(&[0; 24]);
    targets::repo_deltas(&[0; 36]);
    // An empty segment's body (first 1, last 0): decodes, and encodes back.
    let mut empty = vec![0u8; 36];
    empty[0] = 1;
    assert!(etcdsnap::internal::repo::reencode_delta_body(&empty).is_some());
    targets::repo_deltas(&empty);
}
