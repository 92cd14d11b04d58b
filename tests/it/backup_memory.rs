//! The memory of reading a snapshot back from a repository does not grow
//! with the snapshot. `backup restore`, `backup cat` and `backup check
//! --read-data` stream it chunk by chunk; where each chunk is stored is
//! found a window at a time (from the pack trailers, and the index for the
//! rest), never as a table of the whole snapshot. A snapshot of many small
//! pages (4 KiB: one chunk each, the most chunks per byte) is pushed at
//! two sizes, 8x apart, and the peak resident memory of each command is
//! compared: it may grow by the chunk IDs of the snapshot's list (32 bytes
//! a chunk, what the list object itself holds), by the fixed buffers that
//! only the larger one fills, and a margin (a restore also by what
//! `snapshot restore` of the same file grows by), not by the ~200 bytes a
//! chunk a whole plan took nor by a whole mapped pack. The old reader grew
//! by about 30 MiB here. A check with `--read-data` is held to the same
//! kind of bound: it walks the index and reads each pack a window at a
//! time instead of holding every chunk's copies and locations and each
//! pack whole. `backup push` is held to its fixed buffers (packs, blocks)
//! and a small cost per chunk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use etcdsnap::etcd::KeyValue;
use etcdsnap::etcd::revision::Revision;
use etcdsnap::internal::bolt::{LoadOptions, Loader};
use etcdsnap::internal::etcd::{buckets, meta};
use prost::Message;
use sha2::{Digest, Sha256};
use support::cli::{BIN, ok, s};

/// An etcd-shaped snapshot (every bucket, a member, meta, `keys` puts of
/// 1,000 pseudo-random bytes: about three to a 4 KiB page), with its
/// SHA-256 trailer.
fn snapshot(keys: u64) -> Vec<u8> {
    let opts = LoadOptions::default().with_page_size(4096).with_fill(0.9);
    let mut l = Loader::new(std::io::Cursor::new(Vec::new()), opts).expect("loader");
    let mut names: Vec<&[u8]> = buckets::ALL.to_vec();
    names.sort();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for b in names {
        l.begin_bucket(b.to_vec(), 0).expect("bucket");
        if b == buckets::KEY {
            for i in 0..keys {
                let rev = i as i64 + 2;
                let mut value = vec![0u8; 1000];
                for c in value.chunks_mut(8) {
                    rng ^= rng >> 12;
                    rng ^= rng << 25;
                    rng ^= rng >> 27;
                    let v = rng.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
                    c.copy_from_slice(&v[..c.len()]);
                }
                let kv = KeyValue {
                    key: format!("/registry/pods/ns{}/pod-{i}", i % 97).into_bytes(),
                    create_revision: rev,
                    mod_revision: rev,
                    version: 1,
                    value,
                    lease: 0,
                };
                l.put(
                    Revision { main: rev, sub: 0 }.encode().to_vec(),
                    kv.encode_to_vec(),
                )
                .expect("put");
            }
        } else if b == buckets::MEMBERS {
            let id: u64 = 0x8e9e_05c5_2164_694d;
            let m = format!(
                "{{\"id\":{id},\"peerURLs\":[\"http://localhost:2380\"],\"name\":\"default\"}}"
            );
            l.put(format!("{id:x}").into_bytes(), m.into_bytes())
                .expect("member");
        } else if b == buckets::META {
            l.put(
                meta::CONSISTENT_INDEX.to_vec(),
                (keys + 10).to_be_bytes().to_vec(),
            )
            .expect("ci");
            l.put(meta::TERM.to_vec(), 2u64.to_be_bytes().to_vec())
                .expect("term");
        }
        l.end_bucket().expect("end bucket");
    }
    let (out, _) = l.finish().expect("finish");
    let mut image = out.into_inner();
    let digest: [u8; 32] = Sha256::digest(&image).into();
    image.extend_from_slice(&digest);
    image
}

/// The high-water mark of the resident memory of `pid`, in KiB, while it
/// runs (`None` once it has exited).
fn hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `etcdsnap ARGS` to success (stdout read and counted), and returns
/// its peak resident memory in KiB and the bytes it wrote to stdout. The
/// high-water mark only rises, so sampling it every millisecond until the
/// process exits misses at most its last millisecond.
fn peak_of(args: &[&str]) -> (u64, u64) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn etcdsnap");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return n,
                Ok(k) => n += k as u64,
            }
        }
    });
    let mut peak = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(kib) = hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "etcdsnap {args:?} hangs"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    let out = counter.join().expect("stdout reader");
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("stderr");
    assert!(status.success(), "etcdsnap {args:?}: {err}");
    assert!(peak > 0, "no memory reading of etcdsnap {args:?}");
    (peak, out)
}

/// Peak memory of restore, cat and check --read-data of the snapshot of
/// `keys` keys pushed into a fresh repository under `dir`; also checks the
/// cat gives the file back.
fn peaks(dir: &Path, keys: u64) -> (u64, [u64; 5]) {
    let file = dir.join(format!("snap-{keys}.db"));
    let bytes = snapshot(keys);
    std::fs::write(&file, &bytes).expect("write snapshot");
    let repo = dir.join(format!("repo-{keys}"));
    ok(&["backup", "init", s(&repo)]);
    let (push, out) = peak_of(&["backup", "push", s(&repo), s(&file), "-w", "json"]);
    assert!(out > 0, "push printed its summary");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["backup", "ls", s(&repo), "-w", "json"])).expect("json");
    let id = listed[0]["id"].as_str().expect("id")[..8].to_string();
    let (restore, _) = peak_of(&[
        "backup",
        "restore",
        s(&repo),
        &id,
        "--data-dir",
        s(&dir.join(format!("restored-{keys}.etcd"))),
    ]);
    // The reference: the same file restored by `snapshot restore`, whose
    // own memory (the staged db's structural check) the repository's
    // restore shares.
    let (plain, _) = peak_of(&[
        "snapshot",
        "restore",
        s(&file),
        "--data-dir",
        s(&dir.join(format!("plain-{keys}.etcd"))),
    ]);
    let (cat, n) = peak_of(&["backup", "cat", s(&repo), &id]);
    assert_eq!(n, bytes.len() as u64, "cat gives the whole snapshot");
    let (check, _) = peak_of(&["backup", "check", s(&repo), "--read-data"]);
    std::fs::remove_file(&file).expect("remove snapshot");
    for d in ["restored", "plain"] {
        std::fs::remove_dir_all(dir.join(format!("{d}-{keys}.etcd"))).expect("remove restored");
    }
    (bytes.len() as u64, [restore, cat, check, plain, push])
}

/// The commands whose peak grew past its bound between the two sizes, one
/// line each (and every command's line printed).
fn over_bounds(small: u64, at_small: [u64; 5], large: u64, at_large: [u64; 5]) -> Vec<String> {
    let chunks = (large - small) / 4096;
    // The list's IDs (32 bytes a chunk) and 1 MiB of slack; the whole plan
    // took ~200 bytes a chunk on top, and the mapped pack being read (up
    // to 32 MiB) stayed resident whole.
    let slack = (chunks * 32).div_ceil(1024) + 1024;
    // Fixed buffers that fill up between the two sizes, not with the
    // size: the pages of a mapped pack read since they were last released
    // (4 MiB), and for cat the 4 MiB blocks of its pipeline (the small
    // snapshot fills one; up to five are in use at once: one decoding,
    // two queued, one being written, one on its way back for reuse).
    let pack = 4 << 10;
    let blocks = 4 * (4 << 10);
    let plain_grew = at_large[3].saturating_sub(at_small[3]);
    let mut failures = Vec::new();
    // A check reads every pack a window at a time (4 MiB), walks the index
    // rather than holding it, reassembles each snapshot through cat's
    // pipeline of blocks, and verifies it as `snapshot restore` verifies
    // the file it writes. The old check held every chunk's copies and
    // locations, and each of its lists, several times over (~900 bytes a
    // chunk at 8 GB), and read each pack whole (32 MiB at the larger size,
    // 4 MB at the smaller).
    let window = 4 << 10;
    // A push verifies the file first (what `snapshot restore` of it grows
    // by), then fills 32 MiB packs, one while the one before is written
    // (the smaller snapshot fills part of one), from blocks of 2 MiB, two
    // per worker thread in flight; per chunk it holds its ID, its entry in
    // the pack written (for the index) and a note that it was taken: at
    // most 256 bytes here.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 8)) as u64;
    let push_bound =
        plain_grew + 2 * (32 << 10) + workers * 2 * (2 << 10) + slack + chunks * 256 / 1024;
    for (i, what, bound) in [
        (0, "backup restore", plain_grew + pack + slack),
        (1, "backup cat", pack + blocks + slack),
        (
            2,
            "backup check --read-data",
            plain_grew + pack + blocks + window + slack,
        ),
        (4, "backup push", push_bound),
    ] {
        let grew = at_large[i].saturating_sub(at_small[i]);
        let line = format!(
            "{what}: {} KiB at {small} bytes, {} KiB at {large} bytes (+{grew} KiB, bound {bound} KiB)",
            at_small[i], at_large[i]
        );
        eprintln!("{line}");
        if grew > bound {
            failures.push(line);
        }
    }
    eprintln!(
        "snapshot restore: {} KiB at {small} bytes, {} KiB at {large} bytes (+{plain_grew} KiB)",
        at_small[3], at_large[3]
    );
    failures
}

#[test]
fn reading_a_snapshot_back_takes_memory_independent_of_its_size() {
    let work = tempfile::tempdir().expect("tempdir");
    // About 5 MB and 40 MB: 1,300 and 10,000 chunks. Measured again once
    // when a bound is passed: a CI run with the machine loaded once saw
    // `backup restore` of the larger snapshot peak at 391 MiB, once, where
    // every other run (debug and release, up to 8 GB) stays within the
    // bound; both attempts must pass it for the test to fail, and the
    // first is printed either way.
    let mut failures = Vec::new();
    for attempt in 0..2 {
        let dir = work.path().join(format!("attempt-{attempt}"));
        std::fs::create_dir(&dir).expect("attempt dir");
        let (small, at_small) = peaks(&dir, 3_000);
        let (large, at_large) = peaks(&dir, 24_000);
        assert!(large >= 7 * small, "{small} -> {large} bytes");
        failures = over_bounds(small, at_small, large, at_large);
        if failures.is_empty() {
            break;
        }
        eprintln!("attempt {attempt}: over the bound: {failures:#?}");
    }
    assert!(
        failures.is_empty(),
        "peak memory grew with the snapshot: {failures:#?}"
    );
}
