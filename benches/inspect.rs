//! The MVCC view and the inspection tools, warm page cache: a point `get`
//! (newest key, a key from the middle of the history, a missing key), a
//! `--prefix --count-only` of one namespace (1/97 of the keys), `stats`, and
//! `diff` of a snapshot against a copy with 1% of its keys rewritten.
//! Throughput = bytes of the file(s) read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::Snapshot;
use etcdsnap::bolt::Db;
use etcdsnap::etcd::{KeyValue, revision::Revision};
use etcdsnap::inspect::diff::diff;
use etcdsnap::inspect::group::GroupBy;
use etcdsnap::inspect::stats::stats;
use etcdsnap::internal::bolt::tx::{self, BucketChanges, WriteOptions};
use etcdsnap::internal::etcd::buckets;
use etcdsnap::mvcc::{RangeRequest, Store, prefix_end};
use prost::Message;
use sha2::{Digest, Sha256};

/// `input` with every 100th key rewritten (1%), as a later backup of the
/// same cluster would hold it: new revisions appended to the key bucket.
fn one_percent_changed(input: &common::Input, keys: u64) -> common::Input {
    let path = input.path.with_extension("1pct.db");
    if !path.exists() {
        let bytes = std::fs::read(&input.path).expect("read input");
        let mut image = bytes[..bytes.len() - 32].to_vec();
        let mut rev = keys as i64 + 2;
        let changed: Vec<u64> = (0..keys).step_by(100).collect();
        for chunk in changed.chunks(common::KEYS_PER_TXN as usize) {
            let mut changes = BucketChanges::new();
            let b = changes.bucket(buckets::KEY.to_vec());
            for &i in chunk {
                let kv = KeyValue {
                    key: format!("/registry/pods/ns{}/pod-{i}", i % 97).into_bytes(),
                    create_revision: i as i64 + 2,
                    mod_revision: rev,
                    version: 2,
                    value: vec![0x5a; 1000],
                    lease: 0,
                };
                b.put(
                    Revision { main: rev, sub: 0 }.encode().to_vec(),
                    kv.encode_to_vec(),
                );
                rev += 1;
            }
            let db = Db::open(&image).expect("open image");
            let plan = tx::plan(db, &changes, WriteOptions { fill: 0.9 }).expect("plan");
            plan.apply_to(&mut image);
        }
        let digest: [u8; 32] = Sha256::digest(&image).into();
        image.extend_from_slice(&digest);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).expect("create");
        f.write_all(&image).expect("write");
        drop(f);
        std::fs::rename(&tmp, &path).expect("rename");
    }
    let len = std::fs::metadata(&path).expect("stat").len();
    common::Input {
        name: format!("{}-vs-1pct", input.name),
        path,
        len,
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("inspect");
    common::configure_big(&mut g);
    let shape = common::sized(common::LARGE_VALUES);
    let input = common::synthetic(shape);
    common::warm(&input);
    let snap = Snapshot::open(&input.path).expect("open");
    let store = Store::open(&snap).expect("store");
    g.throughput(Throughput::Bytes(input.len));
    let newest = format!(
        "/registry/pods/ns{}/pod-{}",
        (shape.keys - 1) % 97,
        shape.keys - 1
    );
    let middle = format!(
        "/registry/pods/ns{}/pod-{}",
        (shape.keys / 2) % 97,
        shape.keys / 2
    );
    for (label, key) in [
        ("newest", newest.as_str()),
        ("middle", &middle),
        ("missing", "/registry/none"),
    ] {
        assert_eq!(
            store.get(key.as_bytes(), 0).expect("get").is_some(),
            label != "missing"
        );
        g.bench_function(format!("get-{label}/{}", input.name), |b| {
            b.iter(|| store.get(key.as_bytes(), 0).expect("get"))
        });
    }
    let prefix = b"/registry/pods/ns5/".to_vec();
    let end = prefix_end(&prefix);
    let req = RangeRequest::key(&prefix)
        .with_range_end(&end)
        .with_count_only(true);
    g.bench_function(format!("count-prefix/{}", input.name), |b| {
        b.iter(|| store.range(&req).expect("range").count)
    });
    g.bench_function(format!("stats/{}", input.name), |b| {
        b.iter(|| stats(&snap, GroupBy::Namespace, 10).expect("stats"))
    });
    let other = one_percent_changed(&input, shape.keys);
    common::warm(&other);
    let snap2 = Snapshot::open(&other.path).expect("open");
    let store2 = Store::open(&snap2).expect("store");
    g.throughput(Throughput::Bytes(input.len + other.len));
    let d = diff(&store, &store2, 0, 0).expect("diff");
    assert_eq!(d.changes.len() as u64, shape.keys.div_ceil(100));
    g.bench_function(format!("diff/{}", other.name), |b| {
        b.iter(|| diff(&store, &store2, 0, 0).expect("diff").changes.len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
