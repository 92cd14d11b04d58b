//! The etcd schema on top of bbolt: revision keys, `KeyValue`
//! records, the meta and membership buckets, member and cluster IDs, the
//! status hash and etcd-level consistency checks.
//!
//! ```
//! use etcdsnap::etcd::{KeyValue, revision};
//! use prost::Message as _;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let snap = etcdsnap::Snapshot::open("testdata/snapshots/small-v35.db")?;
//! let db = snap.db()?;
//! let keys = db.root().bucket(b"key")?.ok_or("no key bucket")?;
//! for entry in keys.iter() {
//!     let entry = entry?;
//!     let rev = revision::parse(entry.key)?;
//!     let kv = KeyValue::decode(entry.value)?;
//!     println!("{rev:?} {:?}", String::from_utf8_lossy(&kv.key));
//! }
//! # Ok(()) }
//! ```

pub(crate) mod buckets;
pub mod change;
pub(crate) mod checks;
pub(crate) mod fp;
mod gogo;
pub mod ids;
pub(crate) mod kv;
pub(crate) mod member;
pub mod meta;
pub mod revision;
pub(crate) mod status;
pub(crate) mod version;

pub use checks::{SchemaFindings, SchemaProblem, SchemaProblemKind, Severity};
pub use gogo::GogoError;
pub use kv::{KeyValue, KeyValueRef, Lease};
pub use member::{Member, MemberJsonError};

pub(crate) use checks::SchemaChecks;
pub(crate) use status::{Status, StatusError, StatusVisitor};
pub(crate) use version::TargetVersion;
