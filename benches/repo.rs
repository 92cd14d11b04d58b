//! The backup repository: push (a first push of everything, a push after 1% of the keys
//! were rewritten, a push of a snapshot already stored), `cat`, and a restore from the
//! repository next to a restore of the plain file. Throughput = snapshot bytes per second.
//! Inputs: the ~130 MB synthetic large-values snapshot and a copy with 1% of its keys
//! rewritten (an appended transaction), and the k8s fixture. Bytes stored per push are
//! printed once per input (they do not vary between iterations).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::repo::{PushOptions, Repository};
use etcdsnap::{RestoreOptions, restore};

fn fresh_repo(dir: &Path, name: &str) -> Repository {
    let root = dir.join(name);
    let _ = std::fs::remove_dir_all(&root);
    Repository::init_dir(&root, None).expect("init")
}

fn restore_opts(dir: &Path) -> RestoreOptions {
    RestoreOptions::default()
        .with_data_dir(dir.join("m1.etcd"))
        .with_initial_cluster("default=http://127.0.0.1:2380")
        .with_initial_advertise_peer_urls("http://127.0.0.1:2380")
}

fn bench(c: &mut Criterion) {
    let scratch = common::scratch_dir();
    let base = common::synthetic(common::LARGE_VALUES);
    let changed_path = common::bench_dir().join(format!(
        "{}-1pct.db",
        base.path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("base")
    ));
    if !changed_path.exists() {
        let bytes = std::fs::read(&base.path).expect("read base");
        let changed = common::rewrite(&bytes, common::LARGE_VALUES, 100);
        std::fs::write(&changed_path, changed).expect("write 1% variant");
    }
    let changed_len = std::fs::metadata(&changed_path).expect("stat").len();
    let push = PushOptions::default();

    let mut g = c.benchmark_group("repo");
    common::configure_big(&mut g);
    for input in [base.clone(), common::fixture()] {
        common::warm(&input);
        g.throughput(Throughput::Bytes(input.len));
        g.bench_function(format!("push-first/{}", input.name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let repo = fresh_repo(scratch.path(), "first");
                    let t = Instant::now();
                    repo.push(&input.path, &push).expect("push");
                    total += t.elapsed();
                }
                total
            })
        });
        let repo = fresh_repo(scratch.path(), "again");
        let first = repo.push(&input.path, &push).expect("push");
        eprintln!(
            "{}: {} bytes, first push stored {} bytes ({:.1}%)",
            input.name,
            input.len,
            first.info.new_bytes,
            first.info.new_bytes as f64 * 100.0 / input.len as f64
        );
        g.bench_function(format!("push-unchanged/{}", input.name), |b| {
            b.iter(|| repo.push(&input.path, &push).expect("push"))
        });
        let id = first.info.id.to_string();
        g.bench_function(format!("cat/{}", input.name), |b| {
            b.iter(|| repo.cat(&id, &mut std::io::sink()).expect("cat"))
        });
        g.bench_function(format!("restore-from-repo/{}", input.name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir_in(scratch.path()).expect("tempdir");
                    let opts = restore_opts(dir.path());
                    let t = Instant::now();
                    repo.restore(&id, &opts, &|_| {}).expect("restore");
                    total += t.elapsed();
                }
                total
            })
        });
        g.bench_function(format!("restore-from-file/{}", input.name), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir_in(scratch.path()).expect("tempdir");
                    let opts = restore_opts(dir.path());
                    let t = Instant::now();
                    restore(input.path.as_path(), &opts, &|_| {}).expect("restore");
                    total += t.elapsed();
                }
                total
            })
        });
    }

    // A push after 1% of the keys were rewritten, into a repository holding the base.
    let changed = common::Input {
        name: format!("{}-1pct", base.name),
        path: changed_path,
        len: changed_len,
    };
    common::warm(&changed);
    g.throughput(Throughput::Bytes(changed.len));
    let mut stored = 0;
    g.bench_function(format!("push-1pct/{}", base.name), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let repo = fresh_repo(scratch.path(), "churn");
                repo.push(&base.path, &push).expect("push base");
                let t = Instant::now();
                let s = repo.push(&changed.path, &push).expect("push");
                total += t.elapsed();
                stored = s.info.new_bytes;
            }
            total
        })
    });
    eprintln!(
        "{}: {} bytes, the push after the base stored {stored} bytes ({:.2}%)",
        changed.name,
        changed.len,
        stored as f64 * 100.0 / changed.len as f64
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
