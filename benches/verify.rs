//! `snapshot verify`: `Snapshot::verify` (SHA-256 on one thread, structural + etcd-level
//! walk on the others), with and without the hash check, warm page cache.
//! `VerifyOptions { threads: 1 }` still hashes on a thread of its own next to the walk (the
//! walk gets `max(threads - 1, 1)`), so on 2 cores it equals the default.
//! Throughput = file bytes per second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::{Snapshot, VerifyOptions};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("verify");
    common::configure_big(&mut g);
    for input in common::inputs() {
        common::warm(&input);
        let snap = Snapshot::open(&input.path).expect("open snapshot");
        let full = VerifyOptions::default();
        let r = snap.verify(&full);
        assert!(r.is_ok(), "{}: {:?}", input.name, r.problems());
        let skip = VerifyOptions::default().with_skip_hash_check(true);
        let single = VerifyOptions::default().with_threads(1);
        g.throughput(Throughput::Bytes(input.len));
        for (label, opts) in [
            ("hash+walk", full),
            ("skip-hash-check", skip),
            ("hash+walk-opt-threads-1", single),
        ] {
            g.bench_function(format!("{label}/{}", input.name), |b| {
                b.iter(|| snap.verify(&opts))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
