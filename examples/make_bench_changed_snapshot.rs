//! Makes the later of two benchmark backups with a real etcd 3.5.1: the
//! first snapshot restored and booted, a share of its keys rewritten, saved
//! again.
//!
//! ```text
//! cargo run --release --example make_bench_changed_snapshot -- OLD.db NEW.db [--percent P]
//! ```
//!
//! OLD.db is a snapshot from `make_bench_snapshot` (keys
//! `/registry/pods/ns<i % 97>/pod-<i>`). It is restored with `etcdutl
//! snapshot restore` into a work dir next to NEW.db, etcd 3.5.1 boots on it
//! (one member, loopback), every (100/P)-th key gets a new value of the
//! same size (default P = 1: 1% of the keys), then `etcdctl snapshot save
//! NEW.db` and etcd is stopped by its PID. The two files then share all
//! history up to OLD's revision, as two backups of one cluster do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use support::etcd::ClusterSpec;
use support::oracles;
use support::snapmaker::{BULK_CONNS, Loader};
use support::tools::{self, EtcdVersion};

const USAGE: &str = "usage: make_bench_changed_snapshot OLD.db NEW.db [--percent P (default 1)]";

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let old = PathBuf::from(args.next().ok_or(USAGE)?);
    let new = PathBuf::from(args.next().ok_or(USAGE)?);
    let mut percent = 1.0f64;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--percent" => {
                percent = args
                    .next()
                    .ok_or(USAGE)?
                    .parse()
                    .map_err(|e| format!("--percent: {e}"))?
            }
            _ => return Err(USAGE.into()),
        }
    }
    if !(percent > 0.0 && percent <= 100.0) {
        return Err("--percent must be in (0, 100]".into());
    }
    let bins = tools::etcd_suite(EtcdVersion::V35)?;
    let parent = new
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into());
    let work = parent.join(".changed-snapshot-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("mkdir {}: {e}", work.display()))?;
    let spec = ClusterSpec::in_dir(&bins, 1, &work)
        .arg("--quota-backend-bytes=8589934592")
        .arg("--unsafe-no-fsync")
        .arg("--max-txn-ops=1000")
        .arg(format!("--max-request-bytes={}", 8 << 20))
        .start_timeout(Duration::from_secs(600));
    let m = &spec.members[0];
    let t = Instant::now();
    let restore_args = [
        "--name".to_string(),
        m.name.clone(),
        "--initial-cluster".into(),
        spec.initial_cluster(),
        "--initial-advertise-peer-urls".into(),
        m.peer_url(),
        "--initial-cluster-token".into(),
        spec.token.clone(),
        "--data-dir".into(),
        m.data_dir.to_string_lossy().into_owned(),
    ];
    let a: Vec<&str> = restore_args.iter().map(String::as_str).collect();
    let out = oracles::run_restore(&bins, &old, &a);
    if !out.success() {
        return Err(format!("restore failed: {}", out.stderr));
    }
    eprintln!(
        "restored {} in {:.1} s",
        old.display(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut cluster = spec.start();
    eprintln!("etcd booted in {:.1} s", t.elapsed().as_secs_f64());
    let keys = {
        let snap = etcdsnap::Snapshot::open(&old).map_err(|e| e.to_string())?;
        let store = etcdsnap::mvcc::Store::open(&snap).map_err(|e| e.to_string())?;
        let end = etcdsnap::mvcc::prefix_end(b"/registry/pods/");
        let req = etcdsnap::mvcc::RangeRequest::key(b"/registry/pods/")
            .with_range_end(&end)
            .with_count_only(true);
        store.range(&req).map_err(|e| e.to_string())?.count as u64
    };
    let every = (100.0 / percent).round().max(1.0) as u64;
    let mut loader = Loader::new(cluster.endpoint());
    let t = Instant::now();
    let kvs = (0..keys).step_by(every as usize).map(|i| {
        (
            format!("/registry/pods/ns{}/pod-{i}", i % 97).into_bytes(),
            vec![0x5a; 1000],
        )
    });
    loader.put_all_parallel(BULK_CONNS, kvs);
    let changed = loader.stats.puts;
    eprintln!(
        "rewrote {changed} of {keys} keys in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let part = new.with_extension("db.part");
    let out = cluster
        .ctl_member(0)
        .timeout(Duration::from_secs(1800))
        .snapshot_save(&part);
    cluster.stop();
    drop(cluster);
    if !out.success() {
        let _ = std::fs::remove_file(&part);
        return Err(format!(
            "snapshot save failed: {}{}",
            out.stdout, out.stderr
        ));
    }
    std::fs::rename(&part, &new).map_err(|e| format!("rename: {e}"))?;
    let _ = std::fs::remove_dir_all(&work);
    println!("snapshot: {} ({changed} keys rewritten)", new.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("make_bench_changed_snapshot: {e}");
            ExitCode::FAILURE
        }
    }
}
