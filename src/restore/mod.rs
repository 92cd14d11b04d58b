//! Restore a snapshot into etcd member data dirs.

pub mod cluster;
pub mod urls;
