//! Applies synthetic recorded changes to a snapshot with
//! `etcdsnap::apply_changes`, for measuring a point-in-time restore of a
//! large base (time and peak RSS with `/usr/bin/time -v`).
//!
//! ```text
//! cargo run --release --example apply_synthetic -- BASE.db OUT.db [EVENTS] [VALUE_SIZE]
//! ```
//!
//! EVENTS (default 100,000) key events follow BASE's revision, one per
//! revision, in segments of 10,000 (see `benches/common/changes.rs`:
//! creates, then overwrites and deletes); the result is at the last one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../benches/common/changes.rs"]
mod changes;

use std::time::Instant;

use etcdsnap::{ApplyOptions, Location, PointInTime, Snapshot, TargetVersion, apply_changes};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(base), Some(out)) = (args.first(), args.get(1)) else {
        eprintln!("usage: apply_synthetic BASE.db OUT.db [EVENTS] [VALUE_SIZE]");
        std::process::exit(2);
    };
    let events: usize = args.get(2).map_or(100_000, |s| s.parse().expect("EVENTS"));
    let value_size: usize = args.get(3).map_or(500, |s| s.parse().expect("VALUE_SIZE"));
    let snap = Snapshot::open(base).expect("open base");
    let rev = etcdsnap::mvcc::Store::open(&snap)
        .expect("store")
        .revisions()
        .current;
    let segments = changes::synthetic_changes(rev, events, 10_000, value_size);
    let last = segments.last().map_or(rev, |s| s.last);
    let t = Instant::now();
    let done = apply_changes(
        &snap,
        &segments,
        &Location::parse(out).expect("location"),
        &ApplyOptions::new(PointInTime::Revision(last)).with_target(TargetVersion::V3_5),
    )
    .expect("apply");
    eprintln!(
        "applied {} events ({} revisions) to revision {}: {} -> {} bytes in {:.2} s",
        done.events,
        done.revisions,
        done.revision,
        done.size_before,
        done.size_after,
        t.elapsed().as_secs_f64()
    );
}
