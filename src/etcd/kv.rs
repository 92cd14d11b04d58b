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

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

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
