//! Makes a bloated benchmark snapshot with a real etcd 3.5.1: most of what
//! the file holds is free pages and old revisions, as in a long-running
//! cluster's backups.
//!
//! ```text
//! cargo run --release --example make_bench_bloated_snapshot -- OUT.db [--keys N]
//! ```
//!
//! Starts a fresh single-member etcd 3.5.1 on loopback (data dir next to
//! `OUT.db`, removed afterwards), puts N keys `/registry/pods/ns<i % 97>/pod-<i>`
//! (default 200,000) with 1,000-byte pseudo-random values, overwrites every
//! second key with a new value of the same size, compacts at that revision
//! (`--physical`, as etcd's periodic auto-compaction does: the old values'
//! pages become free), then deletes every fourth key (left as history for a
//! compaction), `etcdctl snapshot save OUT.db` (saved as `OUT.db.part` and
//! renamed) and stops etcd by its PID. Prints the revisions and the size.
//!
//! The reference binaries are found as the tests find them
//! (`tests/support/tools.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use support::snapmaker::{BULK_CONNS, Loader, SnapshotMaker};
use support::tools::{self, EtcdVersion};

const USAGE: &str = "usage: make_bench_bloated_snapshot OUT.db [--keys N (default 200000)]";
const VALUE_SIZE: usize = 1000;

/// xorshift64*: deterministic, incompressible enough for a payload.
struct Rng(u64);

impl Rng {
    fn value(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; VALUE_SIZE];
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        buf
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("/registry/pods/ns{}/pod-{i}", i % 97).into_bytes()
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().ok_or(USAGE)?);
    let mut keys = 200_000u64;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--keys" => {
                keys = args
                    .next()
                    .ok_or(USAGE)?
                    .parse()
                    .map_err(|e| format!("--keys: {e}"))?
            }
            _ => return Err(USAGE.into()),
        }
    }
    let bins = tools::etcd_suite(EtcdVersion::V35)?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot.db".into());
    let work = parent.join(format!(".{name}.etcd-work"));
    let _ = std::fs::remove_dir_all(&work);
    let part = parent.join(format!("{name}.part"));
    let _ = std::fs::remove_file(&part);
    let maker = SnapshotMaker::new(&bins).work_dir(&work);
    let mut cluster = maker.start();
    let mut loader = Loader::new(cluster.endpoint());
    let t = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    loader.put_all_parallel(BULK_CONNS, (0..keys).map(|i| (key(i), rng.value())));
    eprintln!("put {keys} keys in {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    loader.put_all_parallel(
        BULK_CONNS,
        (0..keys).step_by(2).map(|i| (key(i), rng.value())),
    );
    eprintln!("overwrote half in {:.1} s", t.elapsed().as_secs_f64());
    let compacted = loader.compact(true);
    let t = Instant::now();
    for i in (0..keys).skip(1).step_by(4) {
        loader.delete(&key(i));
    }
    let current = loader.revision();
    eprintln!("deleted a quarter in {:.1} s", t.elapsed().as_secs_f64());
    let saved = cluster
        .ctl_member(0)
        .timeout(Duration::from_secs(1800))
        .snapshot_save(&part);
    cluster.stop();
    drop(cluster);
    if !saved.success() {
        let _ = std::fs::remove_file(&part);
        return Err(format!(
            "etcdctl snapshot save: {}{}",
            saved.stdout, saved.stderr
        ));
    }
    std::fs::rename(&part, &out).map_err(|e| format!("rename {}: {e}", part.display()))?;
    let _ = std::fs::remove_dir_all(&work);
    let size = std::fs::metadata(&out).map_err(|e| e.to_string())?.len();
    println!("snapshot: {}", out.display());
    println!("compacted at: {compacted}; current revision: {current}");
    println!("size:     {:.1} MB ({size} bytes)", size as f64 / 1e6);
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_bench_bloated_snapshot: {e}");
            ExitCode::FAILURE
        }
    }
}
