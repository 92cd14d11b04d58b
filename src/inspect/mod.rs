//! Looking inside a snapshot: where the space goes, Kubernetes values, and
//! what changed between two snapshots.

pub mod diff;
pub mod group;
pub mod k8s;
pub mod stats;
