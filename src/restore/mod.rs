//! Restore a snapshot into etcd member data dirs, as `etcdutl snapshot
//! restore` (3.5, 3.6) and `etcdctl snapshot restore` (3.4) do, atomically.
//!
//! ```no_run
//! use etcdsnap::{RestoreOptions, restore};
//!
//! let opts = RestoreOptions::default()
//!     .with_name("m1")
//!     .with_initial_cluster("m1=http://127.0.0.1:2380,m2=http://127.0.0.2:2380")
//!     .with_initial_advertise_peer_urls("http://127.0.0.1:2380")
//!     .with_data_dir("m1.etcd");
//! let summary = restore(std::path::Path::new("backup.db"), &opts, &|_| {})?;
//! println!("cluster {:x}", summary.cluster_id);
//! # Ok::<(), etcdsnap::RestoreError>(())
//! ```

pub(crate) mod dbedit;
pub(crate) mod error;
pub(crate) mod membership;
pub(crate) mod options;
pub(crate) mod run;
pub(crate) mod source;
pub(crate) mod staging;
pub(crate) mod stream;
pub(crate) mod target;

pub use error::{FlagsError, RestoreError};
pub use options::RestoreOptions;
#[cfg(feature = "repo")]
pub(crate) use run::preflight;
pub use run::{RestoreSummary, RestoredMember, restore};
#[cfg(feature = "repo")]
pub(crate) use run::{open_filled, restore_filled};
pub use source::RestoreSource;
pub use stream::SnapshotReader;
