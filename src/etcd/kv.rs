//! Protobuf records stored in etcd's buckets (`mvccpb.KeyValue`,
//! `leasepb.Lease`), as hand-written prost messages.

use super::gogo::{self, GogoError, Value};

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
#[derive(Clone, prost::Message)]
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
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(test, derive(PartialEq, Eq))]
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
    /// Parses an encoded `KeyValue` the way etcd's gogo-protobuf code does
    /// (the last occurrence of a field wins, unknown fields and groups are
    /// skipped); `None` when etcd would refuse the bytes.
    ///
    /// ```
    /// use etcdsnap::etcd::KeyValueRef;
    /// let v = b"\x0a\x03foo\x10\x02\x18\x02\x20\x01\x2a\x03bar";
    /// let kv = KeyValueRef::parse(v).unwrap();
    /// assert_eq!((kv.key, kv.mod_revision, kv.value), (&b"foo"[..], 2, &b"bar"[..]));
    /// assert!(KeyValueRef::parse(b"\x0a\x09foo").is_none());
    /// ```
    pub fn parse(b: &'a [u8]) -> Option<KeyValueRef<'a>> {
        Self::decode(b).ok()
    }

    /// [`parse`](Self::parse) with gogo-protobuf's error when etcd's own
    /// decoder would refuse the bytes.
    pub fn decode(b: &'a [u8]) -> Result<KeyValueRef<'a>, GogoError> {
        let mut kv = KeyValueRef::default();
        gogo::decode(&gogo::KEY_VALUE, b, |field, v| match (field, v) {
            (1, Value::Bytes(x)) => kv.key = x,
            (5, Value::Bytes(x)) => kv.value = x,
            (2, Value::Varint(x)) => kv.create_revision = x as i64,
            (3, Value::Varint(x)) => kv.mod_revision = x as i64,
            (4, Value::Varint(x)) => kv.version = x as i64,
            (6, Value::Varint(x)) => kv.lease = x as i64,
            _ => {}
        })?;
        Ok(kv)
    }
}

/// The `key` field of an encoded `mvccpb.KeyValue` (see
/// [`KeyValueRef::parse`]).
pub fn key_of(b: &[u8]) -> Option<&[u8]> {
    KeyValueRef::parse(b).map(|kv| kv.key)
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
