//! etcdsnap: read, verify, inspect and restore etcd v3 snapshot files.
//!
//! The crate is layered; each layer only uses the ones below it:
//!
//! * [`bolt`]: a zero-copy, bounds-checked reader, checker and writer for the
//!   bbolt file format. It knows nothing of etcd.
//! * [`snapshot`]: the snapshot file itself: the SHA-256 trailer, the memory
//!   map, the copy path.
//! * [`etcd`]: what etcd keeps in the buckets: revisions, `KeyValue`s, meta
//!   and membership records, member and cluster IDs, the status hash.
//! * [`raft`]: the raft files a member data dir holds: WAL segments and
//!   `.snap` files with the v2 store.
//! * [`restore`]: turns a snapshot into member data dirs, atomically.
//! * [`format`](mod@format): etcdutl-compatible renderings of results (tables, JSON).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod bolt;
pub mod etcd;
pub mod format;
pub mod gojson;
pub mod inspect;
mod ioerr;
mod mmap;
pub mod mvcc;
pub mod raft;
pub mod restore;
pub mod snapshot;

// The curated entry points: what an embedder needs, at one path each.
pub use etcd::{Status, StatusError, TargetVersion};
pub use restore::{
    Phase, Progress, RestoreError, RestoreOptions, RestoreSummary, RestoredMember, restore,
};
pub use snapshot::{DbInfo, HashCheck, Snapshot, SnapshotError, VerifyOptions, VerifyReport};
