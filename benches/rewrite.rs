//! `snapshot defrag` and `snapshot compact` (`etcdsnap::rewrite`): the whole
//! snapshot rewritten densely by the bulk loader into a local file, checked,
//! hashed and published. `apply` (`etcdsnap::apply_changes`): the same with
//! 100,000 recorded key events (one per revision, in segments of 10,000)
//! appended, as a point-in-time restore writes it. Throughput = input bytes per second (warm page
//! cache). `benches/compare.sh`-style comparisons against `etcdutl defrag`
//! and peak RSS are in README.md ("Rewriting snapshots").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::{
    ApplyOptions, Location, PointInTime, RewriteOptions, Snapshot, TargetVersion, apply_changes,
    rewrite,
};

fn bench(c: &mut Criterion) {
    let scratch = common::scratch_dir();
    let mut g = c.benchmark_group("rewrite");
    common::configure_big(&mut g);
    for input in [common::synthetic(common::LARGE_VALUES), common::fixture()] {
        common::warm(&input);
        g.throughput(Throughput::Bytes(input.len));
        let out = scratch.path().join("rewritten.db");
        let loc = Location::parse(out.to_str().expect("utf-8")).expect("location");
        let snap = Snapshot::open(&input.path).expect("open input");
        for (what, compact) in [("defrag", None), ("compact", Some(0))] {
            let opts = RewriteOptions::default().with_compact(compact);
            g.bench_function(format!("{what}/{}", input.name), |b| {
                b.iter(|| rewrite(&snap, &loc, &opts).expect("rewrite"))
            });
        }
        let base = etcdsnap::mvcc::Store::open(&snap)
            .expect("store")
            .revisions()
            .current;
        let segments = common::changes::synthetic_changes(base, 100_000, 10_000, 500);
        let last = segments.last().map_or(base, |s| s.last);
        let opts = ApplyOptions::new(PointInTime::Revision(last)).with_target(TargetVersion::V3_5);
        g.bench_function(format!("apply-100k-events/{}", input.name), |b| {
            b.iter(|| apply_changes(&snap, &segments, &loc, &opts).expect("apply"))
        });
        let _ = std::fs::remove_file(&out);
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
