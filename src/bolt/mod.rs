//! The bbolt file format: a zero-copy, bounds-checked reader, a structural
//! checker equivalent to (and stricter than) Go's `tx.Check()`, and a
//! copy-on-write writer.
//!
//! Nothing in this module knows about etcd.

mod bitmap;
pub mod bucket;
pub mod check;
pub mod cursor;
pub mod db;
pub mod error;
pub mod freelist;
pub mod meta;
pub mod node;
pub mod page;
pub mod tx;
pub mod visitor;

pub use bucket::{Bucket, BucketRoot, BucketValue};
pub use check::{CheckOptions, CheckReport, Problem};
pub use cursor::Cursor;
pub use db::Db;
pub use error::BoltError;
pub use meta::Meta;
pub use page::{BranchElem, LeafElem, Page, PageKind};
pub use tx::{BucketChanges, Change, WriteOptions, WritePlan};
pub use visitor::Visitor;
