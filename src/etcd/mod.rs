//! The etcd schema on top of bbolt: bucket names, revision keys, `KeyValue`
//! records, the meta and membership buckets, member and cluster IDs.

pub mod ids;
pub mod member;
