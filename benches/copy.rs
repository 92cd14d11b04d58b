//! The copy path of `snapshot restore`: `snapshot::copy::copy_prefix` (in-kernel
//! `copy_file_range`) of the snapshot body into a fresh file on the same file system.
//! Throughput = body bytes copied per second (warm page cache, target in page cache).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::File;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::internal::snapshot::copy_prefix;

fn bench(c: &mut Criterion) {
    let scratch = common::scratch_dir();
    let mut g = c.benchmark_group("copy_prefix");
    common::configure_big(&mut g);
    for input in [common::synthetic(common::LARGE_VALUES), common::fixture()] {
        common::warm(&input);
        let src = File::open(&input.path).expect("open input");
        let body = input.len - 32;
        g.throughput(Throughput::Bytes(body));
        let dst_path = scratch.path().join("copy-target.db");
        g.bench_function(&input.name, |b| {
            b.iter_batched(
                || {
                    // A fresh, empty target each time, as restore creates one.
                    let _ = std::fs::remove_file(&dst_path);
                    File::create(&dst_path).expect("create target")
                },
                |dst| {
                    copy_prefix(&src, &dst, body, &|_| {}).expect("copy");
                    dst
                },
                BatchSize::PerIteration,
            )
        });
        let _ = std::fs::remove_file(&dst_path);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
