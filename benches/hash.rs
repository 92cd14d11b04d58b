//! SHA-256 of the snapshot body: `snapshot::hash::sha256_prefix` (sequential `pread`,
//! 4 MiB buffer), warm page cache. Throughput = body bytes hashed per second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::File;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::internal::snapshot::sha256_prefix;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha256_prefix");
    common::configure_big(&mut g);
    for input in [common::synthetic(common::LARGE_VALUES), common::fixture()] {
        common::warm(&input);
        let f = File::open(&input.path).expect("open input");
        let body = input.len - 32;
        g.throughput(Throughput::Bytes(body));
        g.bench_function(&input.name, |b| {
            b.iter(|| sha256_prefix(&f, body, &|_| {}).expect("hash"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
