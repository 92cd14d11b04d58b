//! Protobuf records stored in etcd's buckets (`mvccpb.KeyValue`,
//! `leasepb.Lease`), as hand-written prost messages.

/// `mvccpb.KeyValue`, the value of every live entry in the `key` bucket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// The user key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Revision of the key's creation.
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    /// Revision of this change.
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    /// Number of changes since creation.
    #[prost(int64, tag = "4")]
    pub version: i64,
    /// The user value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    /// Attached lease ID, 0 for none.
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// `leasepb.Lease`, the value of an entry in the `lease` bucket.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Lease {
    /// Lease ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Granted TTL in seconds.
    #[prost(int64, tag = "2")]
    pub ttl: i64,
    /// Remaining TTL in seconds (checkpointed leases).
    #[prost(int64, tag = "3")]
    pub remaining_ttl: i64,
}

/// A zero-copy view of an encoded `mvccpb.KeyValue`: the fields etcd's
/// checks need, read without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyValueRef<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// Revision of the key's creation.
    pub create_revision: i64,
    /// Revision of this change.
    pub mod_revision: i64,
    /// Number of changes since creation.
    pub version: i64,
    /// The user value.
    pub value: &'a [u8],
    /// Attached lease ID, 0 for none.
    pub lease: i64,
}

impl<'a> KeyValueRef<'a> {
    /// Parses an encoded `KeyValue` the way protobuf decoders do (the last
    /// occurrence of a field wins, unknown fields are skipped); `None` when
    /// the bytes are not a well-formed message or a known field has the
    /// wrong wire type.
    ///
    /// ```
    /// use etcdsnap::etcd::KeyValueRef;
    /// let v = b"\x0a\x03foo\x10\x02\x18\x02\x20\x01\x2a\x03bar";
    /// let kv = KeyValueRef::parse(v).unwrap();
    /// assert_eq!((kv.key, kv.mod_revision, kv.value), (&b"foo"[..], 2, &b"bar"[..]));
    /// assert!(KeyValueRef::parse(b"\x0a\x09foo").is_none());
    /// ```
    pub fn parse(mut b: &'a [u8]) -> Option<KeyValueRef<'a>> {
        let mut kv = KeyValueRef::default();
        while !b.is_empty() {
            let (tag, rest) = varint(b)?;
            b = rest;
            let field = tag >> 3;
            if field == 0 {
                return None;
            }
            match (field, tag & 7) {
                (1 | 5, 2) => {
                    let (len, rest) = varint(b)?;
                    let (bytes, rest) = rest.split_at_checked(usize::try_from(len).ok()?)?;
                    if field == 1 {
                        kv.key = bytes;
                    } else {
                        kv.value = bytes;
                    }
                    b = rest;
                }
                (2..=4 | 6, 0) => {
                    let (v, rest) = varint(b)?;
                    let v = v as i64;
                    match field {
                        2 => kv.create_revision = v,
                        3 => kv.mod_revision = v,
                        4 => kv.version = v,
                        _ => kv.lease = v,
                    }
                    b = rest;
                }
                (1..=6, _) => return None,
                (_, 0) => b = varint(b)?.1,
                (_, 1) => b = b.get(8..)?,
                (_, 5) => b = b.get(4..)?,
                (_, 2) => {
                    let (len, rest) = varint(b)?;
                    b = rest.get(usize::try_from(len).ok()?..)?;
                }
                _ => return None,
            }
        }
        Some(kv)
    }
}

/// The `key` field of an encoded `mvccpb.KeyValue` (see
/// [`KeyValueRef::parse`]).
pub fn key_of(b: &[u8]) -> Option<&[u8]> {
    KeyValueRef::parse(b).map(|kv| kv.key)
}

/// A protobuf varint and the bytes after it.
fn varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, b.get(i + 1..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn key_value_ref_agrees_with_prost() {
        let kv = KeyValue {
            key: b"/registry/pods/a".to_vec(),
            create_revision: 5,
            mod_revision: 1 << 40,
            version: 3,
            value: vec![9; 300],
            lease: -1,
        };
        let b = kv.encode_to_vec();
        let r = KeyValueRef::parse(&b).expect("parses");
        assert_eq!(r.key, &kv.key[..]);
        assert_eq!(r.value, &kv.value[..]);
        assert_eq!(
            (r.create_revision, r.mod_revision, r.version, r.lease),
            (kv.create_revision, kv.mod_revision, kv.version, kv.lease)
        );
        for cut in 0..b.len() {
            let prost_ok = KeyValue::decode(&b[..cut]).is_ok();
            assert_eq!(
                KeyValueRef::parse(&b[..cut]).is_some(),
                prost_ok,
                "cut {cut}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn key_value_ref_never_disagrees_with_prost(b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let (Some(r), Ok(kv)) = (KeyValueRef::parse(&b), KeyValue::decode(&b[..])) {
                proptest::prop_assert_eq!(r.key, &kv.key[..]);
                proptest::prop_assert_eq!(r.value, &kv.value[..]);
                proptest::prop_assert_eq!(r.mod_revision, kv.mod_revision);
            }
        }
    }

    #[test]
    fn decodes_the_documented_example() {
        // key "foo", create 2, mod 2, version 1, value "bar"
        let b = b"\x0a\x03foo\x10\x02\x18\x02\x20\x01\x2a\x03bar";
        let kv = KeyValue::decode(&b[..]).expect("decode");
        assert_eq!(kv.key, b"foo");
        assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 2, 1));
        assert_eq!(kv.value, b"bar");
        assert_eq!(kv.encode_to_vec(), b.to_vec());
    }
}
