//! Synthetic recorded changes for the point-in-time apply
//! (`etcdsnap::apply_changes`): what an agent would have recorded after a
//! snapshot, shared by `benches/rewrite.rs` and
//! `examples/apply_synthetic.rs`.
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use etcdsnap::etcd::KeyValue;
use etcdsnap::etcd::change::{ChangeSegment, EventKind, KeyEvent, RevisionChanges};

/// `events` key events after a snapshot at revision `base`, one per
/// revision (as most Kubernetes writes are), in segments of
/// `per_segment` revisions: the first half creates keys
/// `/apply/key-<j>` with `value_size`-byte values, the second half
/// overwrites the even ones and deletes the odd ones.
pub fn synthetic_changes(
    base: i64,
    events: usize,
    per_segment: usize,
    value_size: usize,
) -> Vec<ChangeSegment> {
    let half = events.div_ceil(2);
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut revs = Vec::with_capacity(events);
    for i in 0..events {
        let rev = base + 1 + i as i64;
        let j = i % half;
        let key = format!("/apply/key-{j:08}").into_bytes();
        let created = base + 1 + j as i64;
        let value = |salt: u8| {
            (0..value_size)
                .map(|n| b'a' + ((n + j + usize::from(salt)) % 26) as u8)
                .collect()
        };
        let ev = if i < half {
            KeyEvent {
                kind: EventKind::Put,
                kv: KeyValue {
                    key,
                    create_revision: rev,
                    mod_revision: rev,
                    version: 1,
                    value: value(0),
                    lease: 0,
                },
            }
        } else if j.is_multiple_of(2) {
            KeyEvent {
                kind: EventKind::Put,
                kv: KeyValue {
                    key,
                    create_revision: created,
                    mod_revision: rev,
                    version: 2,
                    value: value(1),
                    lease: 0,
                },
            }
        } else {
            KeyEvent {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key,
                    mod_revision: rev,
                    ..KeyValue::default()
                },
            }
        };
        revs.push(RevisionChanges {
            revision: rev,
            events: vec![ev],
            observed: t0 + Duration::from_millis(i as u64),
        });
    }
    let mut segments = Vec::new();
    let mut first = base + 1;
    let mut it = revs.into_iter().peekable();
    while it.peek().is_some() {
        let revisions: Vec<RevisionChanges> = it.by_ref().take(per_segment.max(1)).collect();
        let last = revisions.last().map_or(first - 1, |r| r.revision);
        segments.push(ChangeSegment {
            first,
            last,
            sealed: revisions.last().map_or(t0, |r| r.observed),
            revisions,
            leases: Vec::new(),
            compactions: Vec::new(),
        });
        first = last + 1;
    }
    segments
}
