//! The etcd schema on top of bbolt: bucket names, revision keys, `KeyValue`
//! records, the meta and membership buckets, member and cluster IDs, the
//! status hash and etcd-level consistency checks.

pub mod buckets;
pub mod checks;
mod gogo;
pub mod ids;
pub mod kv;
pub mod member;
pub mod meta;
pub mod revision;
pub mod status;
pub mod version;

pub use checks::{SchemaChecks, SchemaProblem, SchemaProblemKind, Severity};
pub use gogo::GogoError;
pub use status::{Status, StatusError, StatusVisitor};
pub use version::TargetVersion;
