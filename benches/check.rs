//! The structural walk: `bolt::check::check` (all threads, no visitor) and
//! `bolt::check::walk` with `WalkOptions { threads: 1 }` and with every thread, on a
//! memory-mapped snapshot with a warm page cache. Throughput = bbolt image bytes per second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::Snapshot;
use etcdsnap::bolt::{self as check, WalkOptions};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("check");
    common::configure_big(&mut g);
    let all = common::all_threads();
    for input in common::inputs() {
        common::warm(&input);
        let snap = Snapshot::open(&input.path).expect("open snapshot");
        let db = snap.db().expect("bbolt image");
        assert!(check::check(db).is_ok(), "{} is not sound", input.name);
        g.throughput(Throughput::Bytes(snap.body_len()));
        g.bench_function(format!("check/{}", input.name), |b| {
            b.iter(|| check::check(db))
        });
        for threads in [1, all] {
            let opts = WalkOptions::default().with_threads(threads);
            g.bench_function(format!("walk-threads-{threads}/{}", input.name), |b| {
                b.iter(|| check::walk(db, (), &opts).0)
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
