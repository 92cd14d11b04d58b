//! Where snapshots are kept: a plain path, a `file://` URL or an object in
//! a bucket (`s3://`, `gs://`, `az://`, `azure://`, through the
//! `object_store` crate, configured from its usual environment variables),
//! compressed or not by the name's extension (`.zst`, `.gz`).
//!
//! * reading: [`Location::open_snapshot`] reads a location once (download,
//!   decompress, hash) into a temporary file and opens it; restore streams
//!   a location straight into the first member's db;
//! * writing: [`Location::create`] gives a [`LocationWriter`] that
//!   compresses and uploads (multipart) as bytes arrive and publishes
//!   the object only when told to: dropped before that, the upload is
//!   aborted and nothing is visible under the key;
//! * retention: [`RetentionPolicy`] decides which of a series of
//!   time-named snapshots to keep; [`prune`] applies it to a location.

pub(crate) mod compression;
pub(crate) mod error;
pub(crate) mod options;
pub(crate) mod parse;
pub(crate) mod pruning;
pub(crate) mod read;
pub(crate) mod retention;
#[cfg(feature = "save")]
pub(crate) mod sink;
pub(crate) mod store;
#[cfg(test)]
#[cfg(all(feature = "remote", feature = "zstd"))]
mod tests;
pub(crate) mod timestamp;
#[cfg(feature = "remote")]
pub(crate) mod upload;
pub(crate) mod write;

pub use compression::{CompressOptions, Compression};
pub use error::{BoxError, LocationError};
pub use options::LocationOptions;
pub use parse::Location;
pub use pruning::{LocationPruneOptions, LocationPruneReport, PrunedSnapshot, prune};
pub use retention::{KeepReason, RetentionPolicy};
#[cfg(feature = "save")]
pub use sink::LocationSink;
#[cfg(feature = "save")]
pub(crate) use sink::destination;
pub use timestamp::expand_time;
pub use write::LocationWriter;
