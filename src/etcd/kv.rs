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

/// The `key` field of an encoded `mvccpb.KeyValue`, read without decoding
/// (or allocating) the rest; `None` when the bytes are not a well-formed
/// message. Like protobuf decoders, the last occurrence of the field wins;
/// an absent key is empty.
///
/// ```
/// let v = b"\x0a\x03foo\x10\x02\x18\x02\x20\x01\x2a\x03bar";
/// assert_eq!(etcdsnap::etcd::kv::key_of(v), Some(&b"foo"[..]));
/// assert_eq!(etcdsnap::etcd::kv::key_of(b"\x0a\x09foo"), None);
/// ```
pub fn key_of(mut b: &[u8]) -> Option<&[u8]> {
    let mut key: &[u8] = &[];
    while !b.is_empty() {
        let (tag, rest) = varint(b)?;
        b = rest;
        let field = tag >> 3;
        match tag & 7 {
            0 => b = varint(b)?.1,
            1 => b = b.get(8..)?,
            5 => b = b.get(4..)?,
            2 => {
                let (len, rest) = varint(b)?;
                let len = usize::try_from(len).ok()?;
                let (bytes, rest) = rest.split_at_checked(len)?;
                if field == 1 {
                    key = bytes;
                }
                b = rest;
            }
            _ => return None,
        }
        if field == 0 {
            return None;
        }
    }
    Some(key)
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
    fn key_of_agrees_with_prost() {
        let kv = KeyValue {
            key: b"/registry/pods/a".to_vec(),
            create_revision: 5,
            mod_revision: 1 << 40,
            version: 3,
            value: vec![9; 300],
            lease: -1,
        };
        let b = kv.encode_to_vec();
        assert_eq!(key_of(&b), Some(&kv.key[..]));
        for cut in 0..b.len() {
            let prost_ok = KeyValue::decode(&b[..cut]).is_ok();
            assert_eq!(key_of(&b[..cut]).is_some(), prost_ok, "cut {cut}");
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
