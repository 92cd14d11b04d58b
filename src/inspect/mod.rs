//! Looking inside a snapshot: where the space goes, Kubernetes values, and
//! what changed between two snapshots.
