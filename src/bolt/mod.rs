//! The bbolt file format: a zero-copy, bounds-checked reader and a
//! structural checker equivalent to (and stricter than) Go's `tx.Check()`.
//! The writers, a copy-on-write one (restore's db edits) and a bulk loader
//! that writes a whole new, densely packed file (defrag, compact, apply),
//! are the crate's own.
//!
//! Nothing in this module knows about etcd.
//!
//! Every reader here is safe on unverified input: offsets and lengths are
//! checked before use, walks are bounded in depth, and a damaged file gives
//! a [`BoltError`], never a panic.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bytes = std::fs::read("testdata/snapshots/small-v35.member.db")?;
//! let db = etcdsnap::bolt::Db::open(&bytes)?;
//! assert!(etcdsnap::bolt::check(db).is_ok());
//! let mut names = Vec::new();
//! for entry in db.root().iter() {
//!     names.push(String::from_utf8_lossy(entry?.key).into_owned());
//! }
//! assert!(names.contains(&"key".to_string()));
//! # Ok(()) }
//! ```

pub(crate) mod bitmap;
pub(crate) mod bucket;
pub(crate) mod check;
pub(crate) mod clip;
pub(crate) mod cursor;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod freelist;
pub(crate) mod load;
pub(crate) mod meta;
pub(crate) mod node;
pub(crate) mod page;
pub(crate) mod tx;
pub(crate) mod visitor;

pub use bucket::Bucket;
pub use check::{
    MAX_NESTING, MAX_PROBLEMS, NodeKind, OrderRule, Problem, ProblemKind, Stack, WalkOptions,
    WalkReport, WalkStats, check, walk,
};
pub use clip::{CLIP_LEN, Clipped};
pub use cursor::{Cursor, Iter};
pub use db::Db;
pub use error::{BoltError, Result};
pub use load::LoadError;
pub use meta::MetaError;
pub use page::{LeafElem, PageKind};
pub use visitor::Visitor;

// The writer and the file format's constants the rest of the crate uses
// (its tests reach the writer through `etcdsnap::internal::bolt`).
pub(crate) use bucket::BucketRoot;
pub(crate) use load::{
    LoadOptions, LoadSummary, Loader, MAX_KEY_SIZE, MAX_VALUE_SIZE, copy_bucket,
};
pub(crate) use page::LEAF_FLAG_BUCKET;
