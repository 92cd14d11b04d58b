//! What the structural check reports: one typed [`Problem`] per thing wrong,
//! whose `Display` is the message `snapshot verify` prints (Go's wording
//! where Go reports the same thing).

use std::fmt;

use super::super::error::BoltError;
use super::super::page::PageKind;
use crate::bolt::Clipped;

/// The chain of page ids a walk followed to reach a page, printed the way
/// Go's checker prints it: ` (stack: [a b c])`.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub struct Stack {
    /// The page that referred to the first page of `ids`, when the walk
    /// started below the bucket's root (a subtree walked on its own
    /// thread): printed as `... p`.
    pub elided_parent: Option<u64>,
    /// Branch pages from the top of the walk down to the page concerned
    /// (which is the last id).
    pub ids: Vec<u64>,
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(" (stack: [")?;
        if let Some(p) = self.elided_parent {
            write!(f, "... {p} ")?;
        }
        for (i, id) in self.ids.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{id}")?;
        }
        f.write_str("])")
    }
}

/// The kind of page a key-order problem was found on.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum NodeKind {
    /// A branch page.
    Branch,
    /// A leaf page.
    Leaf,
    /// An inline bucket's leaf page image.
    InlineLeaf,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::Branch => "branch",
            NodeKind::Leaf => "leaf",
            NodeKind::InlineLeaf => "inline leaf",
        }
    }
}

/// How a key breaks bbolt's ordering rules (v1.3.7+), or the empty-key rule.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum OrderRule {
    /// The key is empty (Go panics when it materialises such a page).
    EmptyKey,
    /// The key is not greater than the previous key on the page.
    NotAfterPrevious {
        /// The previous key.
        previous: Clipped,
    },
    /// The first key of a page is below the separator that leads to it.
    BelowAncestor {
        /// The ancestor's separator key.
        bound: Clipped,
    },
    /// A key is not below the next separator of an ancestor.
    NotBelowNext {
        /// The ancestor's next separator key.
        bound: Clipped,
    },
}

/// What is wrong, with the details that belong to it.
#[derive(Debug, Clone)]
#[cfg_attr(test, derive(PartialEq, Eq))]
#[non_exhaustive]
pub enum ProblemKind {
    /// The meta page in use declares another page size than the one the
    /// file is read with (Go takes it from meta page 0, or from the first
    /// valid meta it finds): bbolt's next commit copies the declared size
    /// into the other meta page, and the file then opens with the wrong
    /// page size.
    MetaPageSize {
        /// The page size the meta declares.
        declared: u32,
        /// The page size the file is read with.
        used: u32,
        /// The active meta's txid.
        txid: u64,
    },
    /// The meta's high-water mark lies beyond the end of the file.
    HwmBeyondFile {
        /// The high-water mark.
        hwm: u64,
        /// Whole pages in the file.
        file_pages: u64,
    },
    /// A page could not be read or an element, bucket value or freelist is
    /// malformed (the page layer's own error).
    Read(BoltError),
    /// An element inside an inline bucket is malformed.
    InlineRead(BoltError),
    /// A walk went deeper than any real tree.
    TooDeep {
        /// The depth limit.
        limit: usize,
        /// How the page was reached.
        stack: Stack,
    },
    /// A branch or bucket refers to a page at or beyond the high-water mark.
    OutOfBounds {
        /// The high-water mark.
        hwm: u64,
        /// How the page was reached.
        stack: Stack,
    },
    /// A branch or bucket refers to meta page 0 or 1.
    MetaPageReference {
        /// How the page was reached.
        stack: Stack,
    },
    /// The page is reached a second time.
    MultipleReferences {
        /// How the page was reached the second time.
        stack: Stack,
    },
    /// A page of the freelist's span is also reached through the tree.
    FreelistMultipleReference,
    /// An overflow page of the page `head` lies at or beyond the
    /// high-water mark.
    OverflowOutOfBounds {
        /// The overflow page.
        overflow_page: u64,
        /// The high-water mark.
        hwm: u64,
    },
    /// An overflow page of page `head` is also reached another way.
    OverflowMultipleReference {
        /// The page whose overflow span it belongs to.
        head: u64,
        /// How `head` was reached.
        stack: Stack,
    },
    /// A referenced page is all zeros in its header (a lost write).
    ZeroedHeader {
        /// Byte offset of the page.
        offset: u64,
        /// How the page was reached.
        stack: Stack,
    },
    /// A referenced page's header carries another id.
    IdMismatch {
        /// The id in the header.
        found: u64,
        /// Byte offset of the page.
        offset: u64,
        /// How the page was reached.
        stack: Stack,
    },
    /// A page in use (reached through the tree) is listed as free.
    ReachableFreed,
    /// An overflow page of the reachable page `head` is listed as free:
    /// a writer would hand it out and overwrite `head`'s data.
    ReachableFreedOverflow {
        /// The page whose overflow span it belongs to.
        head: u64,
    },
    /// A page of the freelist's own span is listed as free.
    FreelistPageFreed {
        /// The freelist's first page.
        freelist: u64,
    },
    /// A page reached through a bucket is neither a branch nor a leaf.
    InvalidType {
        /// The type found.
        found: PageKind,
        /// How the page was reached.
        stack: Stack,
    },
    /// A branch page with no elements (Go's cursor crashes on it).
    EmptyBranch,
    /// A branch element points at its own page.
    SelfReference {
        /// The element index.
        index: usize,
    },
    /// A key breaks the ordering rules.
    KeyOrder {
        /// Branch, leaf or inline leaf.
        node: NodeKind,
        /// The element index.
        index: usize,
        /// The key.
        key: Clipped,
        /// Which rule.
        rule: OrderRule,
        /// How a branch was reached (branch pages only).
        stack: Option<Stack>,
        /// Byte offset of the inline bucket (inline leaves only).
        inline_offset: Option<u64>,
    },
    /// An inline bucket holds a nested bucket (Go never looks inside inline
    /// buckets, so that bucket's pages would be treated as free).
    InlineNestedBucket {
        /// Byte offset of the inline bucket's page image.
        offset: u64,
        /// The nested bucket's name.
        name: Clipped,
    },
    /// A bucket value with its own root page is not exactly 16 bytes.
    BucketValueLength {
        /// The bucket's name.
        name: Clipped,
        /// The value's length.
        len: usize,
    },
    /// Buckets nested deeper than [`MAX_NESTING`](super::MAX_NESTING).
    NestingTooDeep {
        /// The limit.
        limit: usize,
    },
    /// A synced freelist lists a page outside `[2, hwm)`.
    FreeOutOfRange {
        /// The high-water mark.
        hwm: u64,
    },
    /// A synced freelist lists a page twice.
    AlreadyFreed,
    /// A page below the high-water mark is neither reachable nor free.
    UnreachableUnfreed,
}

/// One thing wrong with the file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Problem {
    /// The page concerned, when there is one.
    pub page: Option<u64>,
    /// The names of the buckets from the root down to the one being walked
    /// when the problem was found (empty for the root bucket's own pages
    /// and for problems outside any bucket, such as the freelist).
    pub bucket: Vec<Clipped>,
    /// What is wrong.
    pub kind: ProblemKind,
}

impl Problem {
    /// A problem on `page` outside any bucket walk.
    pub(crate) fn new(page: Option<u64>, kind: ProblemKind) -> Problem {
        Problem {
            page,
            bucket: Vec::new(),
            kind,
        }
    }

    /// The byte offset in the file the problem is at, when it is known.
    pub fn offset(&self) -> Option<u64> {
        match &self.kind {
            ProblemKind::ZeroedHeader { offset, .. }
            | ProblemKind::IdMismatch { offset, .. }
            | ProblemKind::InlineNestedBucket { offset, .. } => Some(*offset),
            ProblemKind::KeyOrder { inline_offset, .. } => *inline_offset,
            ProblemKind::Read(e) | ProblemKind::InlineRead(e) => error_offset(e),
            _ => None,
        }
    }

    /// The key concerned, when there is one (a misordered key, a bucket's
    /// name).
    pub fn key(&self) -> Option<&[u8]> {
        match &self.kind {
            ProblemKind::KeyOrder { key, .. } => Some(key),
            ProblemKind::InlineNestedBucket { name, .. }
            | ProblemKind::BucketValueLength { name, .. } => Some(name),
            _ => None,
        }
    }
}

fn error_offset(e: &BoltError) -> Option<u64> {
    match e {
        BoltError::PageIdMismatch { offset, .. }
        | BoltError::PageType { offset, .. }
        | BoltError::Element { offset, .. }
        | BoltError::BucketValue { offset, .. } => Some(*offset),
        _ => None,
    }
}

/// Hex of the bytes kept, then how long the whole was when clipped.
fn hex(k: &Clipped) -> String {
    format!("{}{}", crate::go::hex::encode(k), k.suffix())
}

/// Go-quoted (`%q`) bytes kept, then how long the whole was when clipped.
fn quoted(name: &Clipped) -> String {
    format!(
        "{}{}",
        crate::go::quote::quote(name, crate::go::GoRelease::GO1_19),
        name.suffix()
    )
}

/// The page layer's message without its own `page N: ` prefix, which the
/// problem prints already.
fn without_prefix(page: Option<u64>, e: &BoltError) -> String {
    let s = e.to_string();
    match page {
        Some(p) => {
            let prefix = format!("page {p}: ");
            s.strip_prefix(&prefix).map(str::to_owned).unwrap_or(s)
        }
        None => s,
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.page {
            write!(f, "page {p}: ")?;
        }
        match &self.kind {
            ProblemKind::MetaPageSize {
                declared,
                used,
                txid,
            } => write!(
                f,
                "the meta page in use (txid {txid}) declares page size {declared}, but bbolt reads the file with page size {used} (from the first valid meta page); its next commit would write {declared} into the other meta page too"
            ),
            ProblemKind::HwmBeyondFile { hwm, file_pages } => write!(
                f,
                "high-water mark {hwm} is beyond the end of the file ({file_pages} pages)"
            ),
            ProblemKind::Read(e) => f.write_str(&without_prefix(self.page, e)),
            ProblemKind::InlineRead(e) => {
                write!(f, "in an inline bucket: {}", without_prefix(self.page, e))
            }
            ProblemKind::TooDeep { limit, stack } => {
                write!(f, "tree deeper than {limit} levels{stack}")
            }
            ProblemKind::OutOfBounds { hwm, stack } => {
                write!(f, "out of bounds: high-water mark is {hwm}{stack}")
            }
            ProblemKind::MetaPageReference { stack } => write!(
                f,
                "multiple references: a branch or bucket points at meta page {}{stack}",
                self.page.unwrap_or_default()
            ),
            ProblemKind::MultipleReferences { stack } => write!(f, "multiple references{stack}"),
            ProblemKind::FreelistMultipleReference => f.write_str("multiple references (freelist)"),
            ProblemKind::OverflowOutOfBounds { overflow_page, hwm } => write!(
                f,
                "overflow page {overflow_page} is out of bounds: high-water mark is {hwm}"
            ),
            ProblemKind::OverflowMultipleReference { head, stack } => {
                write!(f, "multiple references (overflow of page {head}){stack}")
            }
            ProblemKind::ZeroedHeader { offset, stack } => write!(
                f,
                "page header is all zeros (a lost write?) (byte offset {offset}){stack}"
            ),
            ProblemKind::IdMismatch {
                found,
                offset,
                stack,
            } => write!(
                f,
                "page header identifies the page as {found} (byte offset {offset}){stack}"
            ),
            ProblemKind::ReachableFreed => f.write_str("reachable freed"),
            ProblemKind::ReachableFreedOverflow { head } => write!(
                f,
                "reachable freed (overflow page of page {head}, listed in the freelist)"
            ),
            ProblemKind::FreelistPageFreed { freelist } => write!(
                f,
                "reachable freed (a page of the freelist at page {freelist} lists itself as free)"
            ),
            ProblemKind::InvalidType { found, stack } => {
                write!(f, "invalid type: {}{stack}", found.go_name())
            }
            ProblemKind::EmptyBranch => f.write_str("branch page has no elements"),
            ProblemKind::SelfReference { index } => {
                write!(f, "branch element {index} points at its own page")
            }
            ProblemKind::KeyOrder {
                node,
                index,
                key,
                rule,
                stack,
                inline_offset,
            } => {
                let what = node.name();
                match rule {
                    OrderRule::EmptyKey => write!(f, "{what} element {index} has an empty key")?,
                    OrderRule::NotAfterPrevious { previous } => write!(
                        f,
                        "key[{index}]=(hex){} on {what} page needs to be > (found {}) than previous element (hex){}",
                        hex(key),
                        if previous == key { "=" } else { "<" },
                        hex(previous)
                    )?,
                    OrderRule::BelowAncestor { bound } => write!(
                        f,
                        "the first key[{index}]=(hex){} on {what} page needs to be >= the key in the ancestor (hex){}",
                        hex(key),
                        hex(bound)
                    )?,
                    OrderRule::NotBelowNext { bound } => write!(
                        f,
                        "key[{index}]=(hex){} on {what} page needs to be < than key of the next element in ancestor (hex){}",
                        hex(key),
                        hex(bound)
                    )?,
                }
                if let Some(s) = stack {
                    write!(f, "{s}")?;
                }
                if let Some(o) = inline_offset {
                    write!(f, " (inline bucket at byte offset {o})")?;
                }
                Ok(())
            }
            ProblemKind::InlineNestedBucket { offset, name } => write!(
                f,
                "inline bucket at byte offset {offset} contains a nested bucket {}",
                quoted(name)
            ),
            ProblemKind::BucketValueLength { name, len } => write!(
                f,
                "bucket {}: value has {len} bytes, a bucket with its own pages has 16",
                quoted(name)
            ),
            ProblemKind::NestingTooDeep { limit } => {
                write!(f, "buckets nested deeper than {limit} levels")
            }
            ProblemKind::FreeOutOfRange { hwm } => write!(
                f,
                "listed in the freelist but outside [2, {hwm}) (the high-water mark)"
            ),
            ProblemKind::AlreadyFreed => f.write_str("already freed"),
            ProblemKind::UnreachableUnfreed => f.write_str("unreachable unfreed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_print_like_go() {
        let s = Stack {
            elided_parent: None,
            ids: vec![3, 9, 12],
        };
        assert_eq!(s.to_string(), " (stack: [3 9 12])");
        let s = Stack {
            elided_parent: Some(823),
            ids: vec![0],
        };
        assert_eq!(s.to_string(), " (stack: [... 823 0])");
    }

    #[test]
    fn read_errors_keep_one_page_prefix() {
        let p = Problem::new(Some(7), ProblemKind::Read(BoltError::EmptyBranch { id: 7 }));
        assert_eq!(p.to_string(), "page 7: branch page has no elements");
        let p = Problem::new(
            Some(7),
            ProblemKind::InlineRead(BoltError::Element {
                id: 0,
                index: 1,
                what: "key runs past the end of the page".into(),
                offset: 99,
            }),
        );
        assert_eq!(
            p.to_string(),
            "page 7: in an inline bucket: page 0: element 1: key runs past the end of the page (byte offset 99)"
        );
        assert_eq!(p.offset(), Some(99));
    }

    #[test]
    fn key_order_messages_match_go() {
        let p = Problem::new(
            Some(5),
            ProblemKind::KeyOrder {
                node: NodeKind::Leaf,
                index: 1,
                key: vec![0xab].into(),
                rule: OrderRule::NotAfterPrevious {
                    previous: vec![0xab].into(),
                },
                stack: None,
                inline_offset: None,
            },
        );
        assert_eq!(
            p.to_string(),
            "page 5: key[1]=(hex)ab on leaf page needs to be > (found =) than previous element (hex)ab"
        );
        assert_eq!(p.key(), Some(&[0xab][..]));
    }

    #[test]
    fn huge_keys_are_clipped_in_messages() {
        let p = Problem::new(
            Some(5),
            ProblemKind::KeyOrder {
                node: NodeKind::Leaf,
                index: 1,
                key: Clipped::new(&vec![0xab; 1 << 20]),
                rule: OrderRule::NotAfterPrevious {
                    previous: Clipped::new(&[0xcd; 300]),
                },
                stack: None,
                inline_offset: None,
            },
        );
        let ab = "ab".repeat(super::super::super::clip::CLIP_LEN);
        let cd = "cd".repeat(super::super::super::clip::CLIP_LEN);
        assert_eq!(
            p.to_string(),
            format!(
                "page 5: key[1]=(hex){ab}... (1048576 bytes) on leaf page needs to be > (found <) than previous element (hex){cd}... (300 bytes)"
            )
        );
        let p = Problem::new(
            Some(5),
            ProblemKind::BucketValueLength {
                name: Clipped::new(&[b'n'; 257]),
                len: 3,
            },
        );
        assert_eq!(
            p.to_string(),
            format!(
                "page 5: bucket {:?}... (257 bytes): value has 3 bytes, a bucket with its own pages has 16",
                "n".repeat(256)
            )
        );
    }
}
