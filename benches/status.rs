//! `snapshot status`: `Snapshot::status` (structural walk + CRC-32C hash + key count) with
//! the 3.5 rule and the 3.6 rule (which also decodes every KeyValue), warm page cache.
//! The file is opened once; throughput = file bytes per second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::Snapshot;
use etcdsnap::TargetVersion;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("status");
    common::configure_big(&mut g);
    for input in common::inputs() {
        common::warm(&input);
        let snap = Snapshot::open(&input.path).expect("open snapshot");
        snap.status(TargetVersion::V3_5).expect("status");
        g.throughput(Throughput::Bytes(input.len));
        for (rule, target) in [("3.5", TargetVersion::V3_5), ("3.6", TargetVersion::V3_6)] {
            g.bench_function(format!("rule-{rule}/{}", input.name), |b| {
                b.iter(|| snap.status(target).expect("status"))
            });
        }
        // Including open + mmap, as the CLI does.
        g.bench_function(format!("open+rule-3.5/{}", input.name), |b| {
            b.iter(|| {
                Snapshot::open(&input.path)
                    .expect("open")
                    .status(TargetVersion::V3_5)
                    .expect("status")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
