//! WAL encoding: `restore_wal_prefix` (the records `snapshot restore` writes)
//! for 1, 3 and 255 members, and `WalEncoder` pushing many entry records of 128 B and 4 KiB.
//! Throughput = encoded bytes per second.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use etcdsnap::internal::raft::{Flavour, WalEncoder, WalMember, restore_wal_prefix};
use etcdsnap::raft::wal::WalPayload;
use etcdsnap::raft::{Entry, EntryKind};

fn members(n: u64) -> Vec<WalMember> {
    (1..=n)
        .map(|i| {
            let id = 0x1000_0000_0000_0000u64 + i * 0x9E37_79B9;
            WalMember {
                id,
                context: format!(
                    "{{\"id\":{id},\"peerURLs\":[\"http://10.0.0.{}:2380\"],\"name\":\"m{i}\"}}",
                    i % 250
                )
                .into_bytes(),
            }
        })
        .collect()
}

fn bench_restore_prefix(c: &mut Criterion) {
    let mut g = c.benchmark_group("restore_wal_prefix");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for n in [1u64, 3, 255] {
        let ms = members(n);
        let node = ms[ms.len() / 2].id;
        let len = restore_wal_prefix(node, 42, &ms, Flavour::V35)
            .expect("prefix")
            .len();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("members-{n}"), |b| {
            b.iter(|| restore_wal_prefix(node, 42, &ms, Flavour::V35).expect("prefix"))
        });
    }
    g.finish();
}

fn entries(count: u64, data_len: usize) -> Vec<WalPayload> {
    (1..=count)
        .map(|index| {
            WalPayload::Entry(Entry {
                term: 3,
                index,
                kind: EntryKind::Normal,
                data: Some(vec![(index % 251) as u8; data_len]),
            })
        })
        .collect()
}

fn bench_encoder(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_encoder");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (count, data_len) in [(10_000u64, 128usize), (2_000, 4096)] {
        let recs = entries(count, data_len);
        let mut probe = WalEncoder::new(0);
        for r in &recs {
            probe.push(r).expect("push");
        }
        g.throughput(Throughput::Bytes(probe.as_bytes().len() as u64));
        g.bench_function(format!("entries-{count}x{data_len}B"), |b| {
            b.iter_batched_ref(
                || WalEncoder::new(0),
                |enc| {
                    for r in &recs {
                        enc.push(r).expect("push");
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_restore_prefix, bench_encoder);
criterion_main!(benches);
