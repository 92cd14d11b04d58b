//! A backup repository that stores each bbolt page once.
//!
//! Consecutive snapshots of a cluster share most of their pages, at the
//! same positions. A repository cuts each pushed snapshot into page-aligned
//! chunks named by the hash of their content, stores only the chunks it
//! does not have (zstd-compressed, optionally encrypted) in immutable pack
//! files of up to 32 MiB, and records the snapshot as a manifest plus an
//! ordered chunk list.
//!
//! ```text
//! REPO/config                      format, repository ID, encryption
//! REPO/packs/<ab>/<abcd...>        packs, named by the BLAKE3 of their bytes
//! REPO/lists/<id>                  chunk lists (full, or a delta to a full one)
//! REPO/snapshots/<id>              manifests (the ID is their hash)
//! REPO/known/<id>, forgotten/<id>  which snapshots were pushed, and
//!                                  forgotten (see `held.rs`)
//! REPO/deltas/<id>/<first>-<last>  changes recorded on top of a snapshot
//!                                  (continuous backup, see `deltas.rs`)
//! REPO/index.redb                  the redb index (rebuildable from the above)
//! REPO/lock, REPO/index.lock       flock targets
//! REPO/tmp/                        objects being written
//! ```
//!
//! REPO may also be a prefix in object storage (`s3://bucket/prefix`,
//! see `remote.rs`): the same objects, lock objects under `locks/`, and
//! the index in a local cache directory.
//!
//! Guarantees:
//! * every object is written once under a temporary name and published by
//!   rename (or a single PUT), and a manifest only after what it refers to,
//!   so a crash or a concurrent push never damages what is there;
//! * every chunk is checked against its ID when read, and a reconstructed
//!   snapshot against the SHA-256 recorded when it was pushed, before it is
//!   used; [`Repository::check`] finds a flipped byte in any pack (with
//!   `read_data`), trailer, list, manifest or the index, a truncated pack,
//!   and a manifest removed without a forget, and names the snapshots it
//!   affects;
//! * a snapshot is stored only if `snapshot verify` finds its bbolt
//!   structure and etcd records sound, and `check` with `read_data`
//!   verifies each snapshot as it reassembles it;
//! * the index is a cache: [`Repository::rebuild_index`] makes it again
//!   from the packs, lists and manifests;
//! * pushes run concurrently (shared lock); prune takes the lock
//!   exclusively; a command waiting for it says what for and until when,
//!   and [`Repository::unlock`] removes a lock a killed command left in
//!   object storage (`lock.rs`);
//! * a push, forget or prune killed at any step leaves every listed
//!   snapshot whole, and nothing later deletes what one uses (the crash
//!   points are walked through in `prune.rs`).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use etcdsnap::repo::{CheckOptions, PushOptions, Repository};
//! let dir = tempfile::tempdir()?;
//! let repo = Repository::init_dir(dir.path().join("repo"), None)?;
//! repo.push("testdata/snapshots/small-v35.db".as_ref(), &PushOptions::default())?;
//! let opts = CheckOptions::default().with_read_data(true);
//! let report = repo.check(&opts)?;
//! assert!(report.is_ok(), "{:?}", report.problems);
//! assert_eq!(repo.snapshots()?.len(), 1);
//! # Ok(()) }
//! ```

pub(crate) mod backend;
pub(crate) mod check;
pub(crate) mod chunk;
pub(crate) mod codec;
pub(crate) mod config;
pub(crate) mod crypto;
pub(crate) mod deltas;
pub(crate) mod error;
#[cfg(feature = "save")]
pub(crate) mod from_endpoint;
pub(crate) mod held;
pub(crate) mod index;
pub(crate) mod list;
pub(crate) mod local;
pub(crate) mod lock;
pub(crate) mod manifest;
pub(crate) mod pack;
pub(crate) mod point;
pub(crate) mod prune;
pub(crate) mod push;
pub(crate) mod reader;
#[cfg(feature = "remote")]
pub(crate) mod remote;
pub(crate) mod repository;
pub(crate) mod trailers;

#[cfg(test)]
mod proptests;

pub use backend::UnlockReport;
pub use check::{CheckOptions, CheckProblem, CheckReport};
pub use crypto::MasterKey;
pub use deltas::{ChangeChain, ChangeSegmentInfo};
pub use error::{RepoError, Result};
pub use point::PointPlan;
pub use prune::{PruneOptions, PruneReport};
pub use push::{PushOptions, PushSummary};
pub use repository::{Repository, SnapshotId, SnapshotInfo};
