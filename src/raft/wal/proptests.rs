//! Property tests: encoder/decoder round trips and hostile input.

use proptest::prelude::*;

use super::{WalEncoder, WalPayload, decode_segment};
use crate::raft::proto::raftpb;
use crate::raft::snap::decode_snap;
use crate::raft::{
    ConfChange, ConfChangeKind, ConfState, Entry, EntryKind, HardState, WalMetadata, WalSnapshot,
};

fn ids() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(any::<u64>(), 0..4)
}

fn conf_state() -> impl Strategy<Value = ConfState> {
    (ids(), ids(), ids(), ids(), any::<Option<bool>>()).prop_map(|(v, l, vo, ln, a)| ConfState {
        voters: v,
        learners: l,
        voters_outgoing: vo,
        learners_next: ln,
        auto_leave: a,
    })
}

fn bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..300))
}

fn entry() -> impl Strategy<Value = Entry> {
    // Type numbers past the known ones (and negative ones) are kept as read.
    let conf_change = (any::<Option<u64>>(), -1i32..6, any::<u64>(), bytes()).prop_map(
        |(id, t, node_id, context)| {
            ConfChange {
                id,
                kind: ConfChangeKind::from_code(t),
                node_id,
                context,
            }
            .to_bytes()
        },
    );
    prop_oneof![
        (
            prop_oneof![Just(0i32), Just(2i32), Just(3i32), Just(-7i32)],
            any::<u64>(),
            any::<u64>(),
            bytes()
        )
            .prop_map(|(t, term, index, data)| Entry {
                term,
                index,
                kind: EntryKind::from_code(t),
                data
            }),
        (any::<u64>(), any::<u64>(), conf_change).prop_map(|(term, index, cc)| Entry {
            term,
            index,
            kind: EntryKind::ConfChange,
            data: Some(cc)
        }),
    ]
}

fn payload() -> impl Strategy<Value = WalPayload> {
    prop_oneof![
        Just(WalPayload::Crc),
        (any::<u64>(), any::<u64>()).prop_map(|(n, c)| WalPayload::Metadata(WalMetadata {
            node_id: n,
            cluster_id: c
        })),
        entry().prop_map(WalPayload::Entry),
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(term, vote, commit)| {
            WalPayload::State(HardState { term, vote, commit })
        }),
        (any::<u64>(), any::<u64>(), prop::option::of(conf_state())).prop_map(
            |(index, term, conf_state)| WalPayload::Snapshot(WalSnapshot::new(
                index, term, conf_state
            ))
        ),
    ]
}

proptest! {
    #[test]
    fn records_round_trip(
        prev_crc in any::<u32>(),
        payloads in prop::collection::vec(payload(), 0..20),
        zero_words in 0usize..4,
    ) {
        // A segment starts with a CRC record carrying the previous chain.
        let mut all = vec![WalPayload::Crc];
        all.extend(payloads);
        let mut enc = WalEncoder::new(prev_crc);
        let mut crcs = Vec::new();
        for p in &all {
            crcs.push(enc.push(p).unwrap());
        }
        let mut bytes = enc.into_bytes();
        bytes.resize(bytes.len() + 8 * zero_words, 0);

        let recs = decode_segment(&bytes).unwrap();
        prop_assert_eq!(recs.len(), all.len());
        for ((rec, p), crc) in recs.iter().zip(&all).zip(&crcs) {
            prop_assert_eq!(&rec.payload, p);
            prop_assert_eq!(rec.crc, *crc);
            prop_assert_eq!(rec.offset % 8, 0);
            // Decoded here with the wire message, apart from the
            // decoder's conversion.
            let expected_cc = match p {
                WalPayload::Entry(e) if e.kind == EntryKind::ConfChange => {
                    let data = e.data.as_deref().unwrap_or(&[]);
                    let cc = <raftpb::ConfChange as prost::Message>::decode(data).unwrap();
                    Some(ConfChange {
                        id: cc.id,
                        kind: ConfChangeKind::from_code(cc.r#type),
                        node_id: cc.node_id,
                        context: cc.context,
                    })
                }
                _ => None,
            };
            prop_assert_eq!(&rec.conf_change, &expected_cc);
        }
    }

    #[test]
    fn corrupted_segments_never_panic(
        payloads in prop::collection::vec(payload(), 1..8),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut enc = WalEncoder::new(0);
        for p in &payloads {
            enc.push(p).unwrap();
        }
        let mut bytes = enc.into_bytes();
        for (i, x) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        let cut = cut.index(bytes.len() + 1);
        let _ = decode_segment(&bytes[..cut]);
        let _ = decode_segment(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_segment(&bytes);
        let _ = decode_snap(&bytes);
    }
}

/// Frames with small, plausible length words (random padding bits included)
/// around random bodies, so the decoder gets past the length checks.
fn framed_garbage() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (
            0u64..48,
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..56),
        ),
        1..6,
    )
    .prop_map(|frames| {
        let mut out = Vec::new();
        for (len, top, body) in frames {
            out.extend_from_slice(&(len | (u64::from(top) << 56)).to_le_bytes());
            out.extend_from_slice(&body);
        }
        out
    })
}

proptest! {
    #[test]
    fn framed_garbage_never_panics(bytes in framed_garbage()) {
        match decode_segment(&bytes) {
            Ok(recs) => prop_assert!(recs.iter().all(|r| (r.offset as usize) < bytes.len())),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
