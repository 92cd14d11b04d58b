//! etcdsnap: read, verify, inspect and restore etcd v3 snapshot files.
//!
//! The entry points are at the crate root:
//!
//! * [`Snapshot`]: open a snapshot (`etcdctl snapshot save` output, or a raw
//!   `member/snap/db` copy), then [`Snapshot::verify`] it (SHA-256 trailer,
//!   bbolt structure, etcd records) or ask for its [`Snapshot::status`]
//!   (what `etcdutl snapshot status` prints);
//! * [`restore()`] with [`RestoreOptions`]: write member data dirs exactly as
//!   `etcdutl snapshot restore` does, atomically;
//! * [`save()`] with [`SaveOptions`]: take a snapshot from a live member
//!   over gRPC (TLS, client certificates, auth) as `etcdctl snapshot save`
//!   does, kept only when it is complete, matches the server's digest and
//!   verifies; [`save_to`] takes any [`SnapshotSink`];
//! * [`Location`]: where snapshots are kept (a path, `s3://`, `gs://`,
//!   `az://`, `file://`; `.zst`/`.gz` compressed): every command above
//!   reads and writes them, streaming; [`prune`] applies a
//!   [`RetentionPolicy`] to snapshots named by time;
//! * [`DataDir`]: where a member data dir keeps its db, WAL and snapshots.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use etcdsnap::{Snapshot, TargetVersion, VerifyOptions};
//!
//! let snap = Snapshot::open("testdata/snapshots/small-v35.db")?;
//! let report = snap.verify(&VerifyOptions::default());
//! assert!(report.is_ok());
//! let status = snap.status(TargetVersion::V3_5)?;
//! assert_eq!((status.revision, status.total_key), (4, 11));
//! # Ok(()) }
//! ```
//!
//! Underneath, the crate is layered; each layer only uses the ones below it,
//! and the lower layers are public for callers who need them:
//!
//! * [`bolt`]: a zero-copy, bounds-checked reader and checker for the bbolt
//!   file format. It knows nothing of etcd.
//! * [`etcd`]: what etcd keeps in the buckets: revisions, `KeyValue`s, meta
//!   and membership records, member and cluster IDs.
//! * [`raft`]: the raft files a member data dir holds: readers of WAL
//!   segments and `.snap` files.
//! * [`repo`]: a backup repository that stores each bbolt page once
//!   (`etcdsnap backup`).
//! * [`mvcc`]: the `key` bucket as etcd's multi-version store: get, range
//!   and history at any revision, and the KV history hash, as etcd answers
//!   them.
//! * [`inspect`]: where the space goes, Kubernetes values, and the
//!   difference of two snapshots.
//!
//! The snapshot file layer (trailer, memory map, copy path), the restore
//! machinery (with the bbolt and raft writers) and the ports of Go library
//! behaviour are private.
//!
//! # Blocking calls and async code
//!
//! The API is synchronous: every call returns when its work is done,
//! blocking the calling thread meanwhile. Those that wait on the network
//! are [`save()`] and [`save_to`] (gRPC to etcd), and everything that
//! touches object storage: [`Location::open_snapshot`],
//! [`Location::create`] and the [`LocationWriter`]'s `write_all`, `finish`
//! and `publish`, [`restore()`] from an `s3://` (`gs://`, `az://`)
//! location, [`prune`], and every [`repo::Repository`] call on a
//! repository in object storage. The others wait only on local files.
//!
//! Called from async code they are safe all the same, in a tokio runtime
//! of either flavour: none of them panics there, nor deadlocks a
//! current-thread runtime, and dropping anything they returned inside a
//! runtime is safe. The tokio runtime the object store client and tonic
//! need is the crate's own, driven by its own threads and never dropped
//! (a location, writer or repository only refers to it); a call made from
//! inside a runtime waits for it on a helper thread. Such a call still
//! blocks the worker it runs on, so async code should hand it to
//! [`tokio::task::spawn_blocking`] when that worker has other tasks to
//! run. A [`LocationWriter`] dropped unpublished inside a runtime does not
//! wait for its upload to be aborted: the abort runs in the background.
//! `examples/async_embed.rs` embeds the crate in `#[tokio::main]`.
//!
//! # Features
//!
//! Everything is on by default. Without default features the crate is the
//! core: [`Snapshot`], [`restore()`], [`mvcc`], [`inspect`], [`raft`] and
//! local locations, with no async runtime, no network crate and no C
//! compiler. `save` adds [`save()`] (gRPC), `repo` the backup repository,
//! `zstd` `.zst` locations, `s3`, `gcs` and `azure` the object stores, and
//! `cli` the `etcdsnap` binary.
//!
//! Linux only: the copy path uses `copy_file_range(2)` and save reopens its
//! spool file through `/proc/self/fd`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(not(target_os = "linux"))]
compile_error!("etcdsnap supports Linux only (it uses copy_file_range(2) and /proc/self/fd)");

#[cfg(feature = "agent")]
pub mod agent;
mod atomic_file;
pub mod bolt;
pub mod cleanup;
mod datadir;
pub mod etcd;
mod go;
pub mod inspect;
#[doc(hidden)]
pub mod internal;
mod location;
mod mmap;
pub mod mvcc;
mod progress;
pub mod raft;
#[cfg(feature = "repo")]
pub mod repo;
mod restore;
mod rewrite;
#[cfg(feature = "save")]
mod save;
mod sink;
mod snapshot;

pub use datadir::DataDir;
pub use etcd::status::{Status, StatusError};
pub use etcd::version::{TargetChoice, TargetVersion, UnknownVersion};
#[cfg(feature = "save")]
pub use location::LocationSink;
pub use location::{
    BoxError, CompressOptions, Compression, KeepReason, Location, LocationError, LocationOptions,
    LocationPruneOptions, LocationPruneReport, LocationWriter, PrunedSnapshot, RetentionPolicy,
    expand_time, prune,
};
pub use progress::{Phase, Progress};
pub use restore::membership::{ClusterError, UrlError};
pub use restore::{
    FlagsError, RestoreError, RestoreOptions, RestoreSource, RestoreSummary, RestoredMember,
    SnapshotReader, restore,
};
pub use rewrite::{
    ApplyOptions, ApplySummary, ChangeError, PointInTime, RewriteError, RewriteOptions,
    RewriteSummary, apply_changes, check_chain, resolve_time, rewrite,
};
#[cfg(feature = "save")]
pub use save::{Credentials, SaveError, SaveOptions, SaveSummary, TlsOptions, save, save_to};
pub use sink::{FileSink, SinkError, SnapshotSink};
pub use snapshot::{
    DbInfo, HashCheck, Snapshot, SnapshotError, VerifyOptions, VerifyProblem, VerifyReport,
    VerifyWarning, has_trailer,
};
