//! Errors of the bbolt layer.

use super::meta::MetaError;

/// Why a bbolt file could not be opened or read.
///
/// Page ids are the ids a reader asked for; byte offsets are absolute offsets
/// in the file, so a message can be checked with `xxd -s`.
#[derive(Debug, Clone, thiserror::Error)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum BoltError {
    /// The file cannot hold even the two meta pages.
    #[error("file too small to be a bbolt database ({len} bytes)")]
    TooSmall {
        /// Length of the data in bytes.
        len: u64,
    },
    /// Neither meta page is valid.
    #[error("not a valid bbolt database: meta page 0: {meta0}; meta page 1: {meta1}")]
    NoValidMeta {
        /// Why meta page 0 was rejected.
        meta0: MetaError,
        /// Why meta page 1 was rejected.
        meta1: MetaError,
    },
    /// The page size the file is read with (from the meta bbolt takes it
    /// from) is not one bbolt can have written.
    #[error(
        "unsupported page size {size} in the meta page at byte offset {offset} (a power of two from 512 to 16 MiB is expected)"
    )]
    PageSize {
        /// The page size.
        size: u32,
        /// Byte offset of the meta page it was read from.
        offset: u64,
    },
    /// The file is shorter than the two meta pages of its declared page size.
    #[error("file size too small: {len} bytes for two meta pages of {page_size} bytes")]
    FileSizeTooSmall {
        /// Length of the data in bytes.
        len: u64,
        /// Page size from the meta.
        page_size: u32,
    },
    /// A referenced page lies (partly) beyond the end of the file.
    #[error("page {id}: beyond the end of the file ({pages} whole pages in the file)")]
    PageBeyondEof {
        /// The page id.
        id: u64,
        /// Number of whole pages in the file.
        pages: u64,
    },
    /// A page's overflow span runs past the end of the file.
    #[error(
        "page {id}: overflow of {overflow} pages runs past the end of the file ({pages} whole pages in the file)"
    )]
    OverflowBeyondEof {
        /// The page id.
        id: u64,
        /// Its overflow count.
        overflow: u32,
        /// Number of whole pages in the file.
        pages: u64,
    },
    /// A referenced page is at or beyond the high-water mark.
    #[error("page {id}: out of bounds: high-water mark is {hwm}")]
    OutOfBounds {
        /// The page id.
        id: u64,
        /// The meta's high-water mark.
        hwm: u64,
    },
    /// The page's header does not carry the id of the position it was read from.
    #[error("page {id}: header identifies the page as {found} (byte offset {offset})")]
    PageIdMismatch {
        /// The page id asked for.
        id: u64,
        /// The id in the header.
        found: u64,
        /// Byte offset of the page.
        offset: u64,
    },
    /// The page is not of a type that may appear at this place.
    #[error(
        "page {id}: invalid type: {found} where {expected} was expected (byte offset {offset})"
    )]
    PageType {
        /// The page id (0 for an inline page).
        id: u64,
        /// The type found, as Go's bbolt names it.
        found: String,
        /// What was expected.
        expected: &'static str,
        /// Byte offset of the page header.
        offset: u64,
    },
    /// An element header or its key/value runs outside the page.
    #[error("page {id}: element {index}: {what} (byte offset {offset})")]
    Element {
        /// The page id (0 for an inline page).
        id: u64,
        /// The element index.
        index: usize,
        /// What is wrong.
        what: String,
        /// Byte offset of the element header.
        offset: u64,
    },
    /// A bucket value is malformed.
    #[error("bucket {name:?}: {what} (byte offset {offset})")]
    BucketValue {
        /// The bucket's key in its parent, lossily printed.
        name: String,
        /// What is wrong.
        what: String,
        /// Byte offset of the value.
        offset: u64,
    },
    /// A branch page has no elements (Go's cursor would crash on it).
    #[error("page {id}: branch page has no elements")]
    EmptyBranch {
        /// The page id.
        id: u64,
    },
    /// A walk went deeper than any real tree can be.
    #[error("page {id}: tree deeper than {limit} levels (a cycle in the page graph?)")]
    TooDeep {
        /// The page at which the limit was hit.
        id: u64,
        /// The limit.
        limit: usize,
    },
    /// A cursor loaded more pages than the file has, so the page graph has a
    /// cycle or shared subtrees.
    #[error(
        "page {id}: pages are revisited while iterating (a cycle or shared subtree in the page graph)"
    )]
    Revisited {
        /// The page at which the budget ran out.
        id: u64,
    },
    /// The freelist page is malformed.
    #[error("freelist page {id}: {what}")]
    Freelist {
        /// The freelist page id.
        id: u64,
        /// What is wrong.
        what: String,
    },
}

/// Result type of the bbolt layer.
pub type Result<T> = std::result::Result<T, BoltError>;
