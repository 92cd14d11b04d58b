//! The bbolt file format: a zero-copy, bounds-checked reader, a structural
//! checker equivalent to (and stricter than) Go's `tx.Check()`, a
//! copy-on-write writer (crate-internal: restore uses it), and a bulk
//! [`Loader`] that writes a whole new, densely packed file.
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

pub use bucket::{BUCKET_HEADER_SIZE, Bucket, BucketRoot, BucketValue};
pub use check::{
    MAX_NESTING, MAX_PROBLEMS, NodeKind, OrderRule, Problem, ProblemKind, Stack, WalkOptions,
    WalkReport, WalkStats, check, walk,
};
pub use clip::{CLIP_LEN, Clipped};
pub use cursor::{Cursor, Iter, MAX_DEPTH};
pub use db::{Db, MAX_PAGE_SIZE, MIN_PAGE_SIZE};
pub use error::{BoltError, Result};
pub use load::{
    CopyError, LoadError, LoadOptions, LoadSummary, Loader, MAX_KEY_SIZE, MAX_VALUE_SIZE,
    copy_bucket, copy_db,
};
pub use meta::{MAGIC, META_SIZE, Meta, MetaError, NO_FREELIST, VERSION};
pub use page::{
    BranchElem, ELEMENT_SIZE, FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, FLAG_META, LEAF_FLAG_BUCKET,
    LeafElem, PAGE_HEADER_SIZE, Page, PageHeader, PageKind,
};
pub use visitor::Visitor;
