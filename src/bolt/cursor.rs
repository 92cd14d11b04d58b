//! A cursor over one bucket's B+tree: first, next and seek.
//!
//! The cursor keeps a stack of (page, element index) frames from the root
//! to the current leaf. It refuses trees deeper than [`MAX_DEPTH`] and stops
//! with an error once it has loaded more pages than the file has, so cycles
//! and shared subtrees in a damaged file cannot make it loop.

use super::bucket::BucketRoot;
use super::db::Db;
use super::error::{BoltError, Result};
use super::page::{LeafElem, Page, PageKind};

/// Deepest B+tree a cursor will descend (real trees have fewer than 10).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    page: Page<'a>,
    index: usize,
}

/// A position in a bucket's tree.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    db: Db<'a>,
    root: BucketRoot<'a>,
    stack: Vec<Frame<'a>>,
    loads: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(db: Db<'a>, root: BucketRoot<'a>) -> Cursor<'a> {
        Cursor {
            db,
            root,
            stack: Vec::new(),
            loads: 0,
        }
    }

    fn reset(&mut self) -> Result<()> {
        self.stack.clear();
        self.loads = 0;
        match self.root {
            BucketRoot::Page(id) => self.push(id),
            BucketRoot::Inline(p) => {
                self.stack.push(Frame { page: p, index: 0 });
                Ok(())
            }
        }
    }

    fn push(&mut self, id: u64) -> Result<()> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(BoltError::TooDeep {
                id,
                limit: MAX_DEPTH,
            });
        }
        self.loads += 1;
        if self.loads > self.db.hwm().saturating_add(MAX_DEPTH as u64) {
            return Err(BoltError::Revisited { id });
        }
        let page = self.db.node_page(id)?;
        page.check_element_table()?;
        if page.kind() == PageKind::Branch && page.count() == 0 {
            return Err(BoltError::EmptyBranch { id });
        }
        self.stack.push(Frame { page, index: 0 });
        Ok(())
    }

    /// Moves to the first entry at or after the current frames: descends
    /// branches and skips exhausted (or empty) pages.
    fn settle(&mut self) -> Result<Option<LeafElem<'a>>> {
        loop {
            let Some(top) = self.stack.last().copied() else {
                return Ok(None);
            };
            if top.index < top.page.count() {
                if top.page.kind() == PageKind::Leaf {
                    return top.page.leaf(top.index).map(Some);
                }
                let child = top.page.branch(top.index)?.child;
                self.push(child)?;
                continue;
            }
            self.stack.pop();
            if let Some(parent) = self.stack.last_mut() {
                parent.index += 1;
            }
        }
    }

    /// The first entry of the bucket.
    pub fn first(&mut self) -> Result<Option<LeafElem<'a>>> {
        self.reset()?;
        self.settle()
    }

    /// The entry after the current one.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<LeafElem<'a>>> {
        match self.stack.last_mut() {
            Some(top) => top.index += 1,
            None => return Ok(None),
        }
        self.settle()
    }

    /// Descends from the root to a leaf, taking at each branch page the
    /// element `pick` chooses, and returns that leaf (its frame is on top).
    fn descend(&mut self, pick: impl Fn(&Page<'a>) -> Result<usize>) -> Result<Option<Page<'a>>> {
        self.reset()?;
        loop {
            let Some(top) = self.stack.last().copied() else {
                return Ok(None);
            };
            if top.page.kind() == PageKind::Leaf {
                return Ok(Some(top.page));
            }
            let idx = pick(&top.page)?;
            if let Some(t) = self.stack.last_mut() {
                t.index = idx;
            }
            let child = top.page.branch(idx)?.child;
            self.push(child)?;
        }
    }

    /// The last entry of the bucket.
    pub fn last(&mut self) -> Result<Option<LeafElem<'a>>> {
        let Some(leaf) = self.descend(|p| Ok(p.count().saturating_sub(1)))? else {
            return Ok(None);
        };
        match leaf.count() {
            // An empty leaf that is not the only one (Go leaves them behind
            // when it does not rebalance): fall back to a walk.
            0 => {
                let mut last = None;
                let mut e = self.first()?;
                while let Some(x) = e {
                    last = Some(x);
                    e = self.next()?;
                }
                Ok(last)
            }
            n => leaf.leaf(n - 1).map(Some),
        }
    }

    /// The first entry whose key is greater than or equal to `key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<Option<LeafElem<'a>>> {
        // At each branch: the last element whose key is <= the search key
        // (or the first).
        let leaf = self.descend(|p| {
            Ok(partition(p.count(), |i| Ok(p.branch(i)?.key <= key))?.saturating_sub(1))
        })?;
        let Some(leaf) = leaf else { return Ok(None) };
        let idx = partition(leaf.count(), |i| Ok(leaf.leaf(i)?.key < key))?;
        if let Some(t) = self.stack.last_mut() {
            t.index = idx;
        }
        self.settle()
    }
}

/// Index of the first element for which `pred` is false, assuming `pred`
/// is true for a prefix (binary search).
fn partition(n: usize, mut pred: impl FnMut(usize) -> Result<bool>) -> Result<usize> {
    let (mut lo, mut hi) = (0usize, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// Iterator over a bucket's entries; yields at most one error, then ends.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    cursor: Cursor<'a>,
    started: bool,
    done: bool,
}

impl<'a> Iter<'a> {
    pub(crate) fn new(cursor: Cursor<'a>) -> Iter<'a> {
        Iter {
            cursor,
            started: false,
            done: false,
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = Result<LeafElem<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = if self.started {
            self.cursor.next()
        } else {
            self.started = true;
            self.cursor.first()
        };
        match r {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
