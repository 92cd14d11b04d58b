//! Makes a series of snapshots for the backup repository benchmarks with a real etcd 3.5.1:
//! a base snapshot, then the same cluster after 1% of its keys were rewritten, then after
//! another 5% were.
//!
//! ```text
//! cargo run --release --example make_churn_series -- BASE.db OUT-PREFIX
//! ```
//!
//! `BASE.db` is a snapshot made by `make_bench_snapshot` (keys `/registry/pods/ns<i % 97>/pod-<i>`
//! for i in 0..N, N read from the snapshot's key count). It is restored (with etcdsnap's
//! library restore) into a single-member data dir, etcd 3.5.1 is started on it on loopback,
//! then:
//!
//! * keys with `i % 100 == 0` get new pseudo-random values of the same size, and
//!   `etcdctl snapshot save OUT-PREFIX-1pct.db`;
//! * then keys with `i % 20 == 3` (another 5%), and `OUT-PREFIX-5pct.db`.
//!
//! etcd is stopped by its PID and the work dir removed. Each file is saved to `.part` and
//! renamed, so an interrupted run leaves no partial snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use etcdsnap::{RestoreOptions, Snapshot, TargetVersion, restore};
use support::etcd::ClusterSpec;
use support::snapmaker::{BULK_CONNS, Loader, TXN_BYTES};
use support::tools::{self, EtcdVersion};

/// xorshift64*, as make_bench_snapshot uses (other seed).
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

fn run(base: &Path, prefix: &str) -> Result<(), String> {
    let bins = tools::etcd_suite(EtcdVersion::V35)?;
    let snap = Snapshot::open(base).map_err(|e| e.to_string())?;
    let status = snap
        .status(TargetVersion::V3_5)
        .map_err(|e| e.to_string())?;
    let keys = status.total_key;
    drop(snap);
    let out_dir = Path::new(prefix)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let work = out_dir.join(".churn-series-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("mkdir {}: {e}", work.display()))?;

    let spec = ClusterSpec::in_dir(&bins, 1, &work)
        .arg(format!("--max-request-bytes={}", 4 * TXN_BYTES))
        .arg("--max-txn-ops=1000")
        .arg("--quota-backend-bytes=8589934592")
        .arg("--unsafe-no-fsync")
        .start_timeout(Duration::from_secs(600));
    let m = &spec.members[0];
    let opts = RestoreOptions::default()
        .with_name(m.name.clone())
        .with_initial_cluster(spec.initial_cluster())
        .with_initial_advertise_peer_urls(m.peer_url())
        .with_initial_cluster_token(spec.token.clone())
        .with_data_dir(m.data_dir.clone());
    let t = Instant::now();
    restore(base, &opts, &|_| {}).map_err(|e| format!("restore {}: {e}", base.display()))?;
    eprintln!(
        "make_churn_series: restored {} ({keys} keys) in {:.1} s",
        base.display(),
        t.elapsed().as_secs_f64()
    );
    let data_dir = m.data_dir.clone();
    let mut cluster = spec.data_dir(0, &data_dir).start();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    type Pick = fn(u64) -> bool;
    let steps: [(&str, Pick); 2] = [("1pct", |i| i % 100 == 0), ("5pct", |i| i % 20 == 3)];
    for (name, pick) in steps {
        let t = Instant::now();
        let mut loader = Loader::new(cluster.endpoint());
        let kvs: Vec<(Vec<u8>, Vec<u8>)> = (0..keys)
            .filter(|&i| pick(i))
            .map(|i| {
                let mut v = vec![0u8; 1000];
                rng.fill(&mut v);
                (key(i), v)
            })
            .collect();
        let n = kvs.len();
        loader.put_all_parallel(BULK_CONNS, kvs);
        let out = PathBuf::from(format!("{prefix}-{name}.db"));
        let part = PathBuf::from(format!("{prefix}-{name}.db.part"));
        let _ = std::fs::remove_file(&part);
        let o = cluster
            .ctl_member(0)
            .timeout(Duration::from_secs(1800))
            .snapshot_save(&part);
        if !o.success() {
            cluster.stop();
            return Err(format!("snapshot save: {}{}", o.stdout, o.stderr));
        }
        std::fs::rename(&part, &out).map_err(|e| format!("rename: {e}"))?;
        println!(
            "{}: {n} keys rewritten, {} bytes, in {:.1} s",
            out.display(),
            std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0),
            t.elapsed().as_secs_f64()
        );
    }
    cluster.stop();
    drop(cluster);
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [base, prefix] = args.as_slice() else {
        eprintln!("usage: make_churn_series BASE.db OUT-PREFIX");
        return ExitCode::from(2);
    };
    match run(Path::new(base), prefix) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_churn_series: {e}");
            ExitCode::FAILURE
        }
    }
}
