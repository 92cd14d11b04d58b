//! The depth-first walk of a bucket's pages: each page's header, overflow
//! span, element table, key order and nested buckets, each page once.

use std::sync::atomic::Ordering;

use super::super::bucket::{BucketRoot, BucketValue, value_offset};
use super::super::clip::Clipped;
use super::super::cursor::MAX_DEPTH;
use super::super::page::{LeafElem, Page, PageHeader, PageKind};
use super::order::order_problem;
use super::problem::{NodeKind, Problem, ProblemKind, Stack};
use super::{MAX_NESTING, Shared, Visitor, WalkReport};

/// A child to visit, with the key bounds its keys must respect.
#[derive(Clone, Copy)]
pub(super) struct Child<'a> {
    pub(super) id: u64,
    /// The page that refers to it (for messages), if any.
    pub(super) parent: Option<u64>,
    /// Keys must be >= this (closed).
    pub(super) lower: Option<&'a [u8]>,
    /// Keys must be < this (open).
    pub(super) upper: Option<&'a [u8]>,
}

pub(super) struct BranchFrame<'a> {
    id: u64,
    children: Vec<Child<'a>>,
    next: usize,
}

pub(super) struct Walker<'s, 'r, 'a, V> {
    pub(super) sh: &'s Shared<'r, 'a>,
    pub(super) v: V,
    pub(super) report: WalkReport,
    pub(super) parallel: bool,
    /// Names of the buckets from the root to the one being walked.
    pub(super) path: Vec<&'a [u8]>,
}

impl<'s, 'r, 'a, V: Visitor> Walker<'s, 'r, 'a, V> {
    pub(super) fn new(sh: &'s Shared<'r, 'a>, v: V, parallel: bool, path: Vec<&'a [u8]>) -> Self {
        Walker {
            sh,
            v,
            report: WalkReport::default(),
            parallel,
            path,
        }
    }

    fn problem(&mut self, page: Option<u64>, kind: ProblemKind) {
        self.problem_with(page, || kind);
    }

    /// Records a problem, built only when the report has room for it.
    fn problem_with(&mut self, page: Option<u64>, kind: impl FnOnce() -> ProblemKind) {
        if self.report.is_full() {
            self.report.omitted += 1;
            return;
        }
        let bucket = self.path.iter().map(|n| Clipped::new(n)).collect();
        self.report.push(Problem {
            page,
            bucket,
            kind: kind(),
        });
    }

    fn stack(stack: &[BranchFrame<'_>], c: Child<'_>) -> Stack {
        Stack {
            elided_parent: if stack.is_empty() { c.parent } else { None },
            ids: stack.iter().map(|f| f.id).chain([c.id]).collect(),
        }
    }

    /// Walks a bucket given by its decoded value.
    fn walk_bucket(&mut self, value: BucketValue<'a>, host: Option<u64>) {
        self.report.stats.buckets += 1;
        match value.root {
            BucketRoot::Inline(page) => {
                self.report.stats.inline_buckets += 1;
                self.visit_leaf(page, None, None, host);
            }
            BucketRoot::Page(id) => self.walk_paged_bucket(id),
        }
    }

    pub(super) fn walk_paged_bucket(&mut self, root: u64) {
        let child = Child {
            id: root,
            parent: None,
            lower: None,
            upper: None,
        };
        if self.parallel && !self.path.is_empty() && self.is_branch(root) {
            self.walk_parallel(child);
        } else {
            self.walk_subtree(child);
        }
    }

    pub(super) fn is_branch(&self, id: u64) -> bool {
        id < self.sh.limit
            && self
                .sh
                .db
                .raw_page(id)
                .is_ok_and(|p| p.kind() == PageKind::Branch)
    }

    /// Depth-first walk of the subtree under `start`.
    pub(super) fn walk_subtree(&mut self, start: Child<'a>) {
        let mut stack: Vec<BranchFrame<'a>> = Vec::new();
        self.visit_node(start, &mut stack);
        loop {
            let next = match stack.last_mut() {
                None => break,
                Some(top) => {
                    let c = top.children.get(top.next).copied();
                    top.next += 1;
                    c
                }
            };
            match next {
                Some(c) => self.visit_node(c, &mut stack),
                None => {
                    stack.pop();
                }
            }
        }
    }

    fn visit_node(&mut self, c: Child<'a>, stack: &mut Vec<BranchFrame<'a>>) {
        if stack.len() >= MAX_DEPTH {
            let stack = Self::stack(stack, c);
            self.problem(
                Some(c.id),
                ProblemKind::TooDeep {
                    limit: MAX_DEPTH,
                    stack,
                },
            );
            return;
        }
        let Some(page) = self.enter(c, stack) else {
            return;
        };
        if page.kind() == PageKind::Leaf {
            self.visit_leaf(page, c.lower, c.upper, None);
        } else {
            let children = self.branch_children(page, c, stack);
            stack.push(BranchFrame {
                id: c.id,
                children,
                next: 0,
            });
        }
    }

    /// Marks page `id` and its overflow pages reachable and validates its
    /// header. Returns the page when it is a sound branch or leaf that has
    /// not been seen before.
    pub(super) fn enter(&mut self, c: Child<'a>, stack: &[BranchFrame<'_>]) -> Option<Page<'a>> {
        let id = c.id;
        self.tick();
        let sh = self.sh;
        if id >= sh.hwm {
            let stack = Self::stack(stack, c);
            self.problem(Some(id), ProblemKind::OutOfBounds { hwm: sh.hwm, stack });
            return None;
        }
        if id < 2 {
            let stack = Self::stack(stack, c);
            self.problem(Some(id), ProblemKind::MetaPageReference { stack });
            return None;
        }
        let page = match sh.db.raw_page(id) {
            Ok(p) => p,
            Err(e) => {
                self.problem(Some(id), ProblemKind::Read(e));
                return None;
            }
        };
        if sh.reachable.set(id) {
            let stack = Self::stack(stack, c);
            self.problem(Some(id), ProblemKind::MultipleReferences { stack });
            return None;
        }
        let overflow = u64::from(page.header().overflow);
        for k in 1..=overflow {
            let p = id.saturating_add(k);
            if p >= sh.hwm {
                self.problem(
                    Some(id),
                    ProblemKind::OverflowOutOfBounds {
                        overflow_page: p,
                        hwm: sh.hwm,
                    },
                );
                break;
            }
            if sh.reachable.set(p) {
                let stack = Self::stack(stack, c);
                self.problem(
                    Some(p),
                    ProblemKind::OverflowMultipleReference { head: id, stack },
                );
                break;
            }
            // Go checks only the first page of a run against the freelist;
            // a freed overflow page is handed out by the next write and the
            // value it holds is overwritten.
            if sh.free.get(p) {
                self.problem(Some(p), ProblemKind::ReachableFreedOverflow { head: id });
            }
        }
        self.report.stats.overflow_pages += overflow;
        let found = page.header().id;
        if found != id {
            let stack = Self::stack(stack, c);
            let offset = page.offset();
            let zeroed = page.header()
                == PageHeader {
                    id: 0,
                    flags: 0,
                    count: 0,
                    overflow: 0,
                };
            let kind = if zeroed {
                ProblemKind::ZeroedHeader { offset, stack }
            } else {
                ProblemKind::IdMismatch {
                    found,
                    offset,
                    stack,
                }
            };
            self.problem(Some(id), kind);
            return None;
        }
        if sh.free.get(id) {
            self.problem(Some(id), ProblemKind::ReachableFreed);
        }
        match page.kind() {
            PageKind::Branch => self.report.stats.branch_pages += 1,
            PageKind::Leaf => self.report.stats.leaf_pages += 1,
            found => {
                let stack = Self::stack(stack, c);
                self.problem(Some(id), ProblemKind::InvalidType { found, stack });
                return None;
            }
        }
        if let Err(e) = page.check_element_table() {
            self.problem(Some(id), ProblemKind::Read(e));
            return None;
        }
        if page.kind() == PageKind::Branch && page.count() == 0 {
            self.problem(Some(id), ProblemKind::EmptyBranch);
            return None;
        }
        Some(page)
    }

    fn tick(&self) {
        let sh = self.sh;
        let n = sh.entered.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(release) = sh.opts.release
            && sh.opts.release_every > 0
            && n.is_multiple_of(sh.opts.release_every)
        {
            release();
        }
    }

    /// Checks a branch page's keys and returns its children with bounds.
    pub(super) fn branch_children(
        &mut self,
        page: Page<'a>,
        c: Child<'a>,
        stack: &[BranchFrame<'_>],
    ) -> Vec<Child<'a>> {
        let n = page.count();
        let mut elems = Vec::with_capacity(n);
        for i in 0..n {
            match page.branch(i) {
                Ok(e) => elems.push(e),
                Err(e) => {
                    self.problem(Some(c.id), ProblemKind::Read(e));
                    break;
                }
            }
        }
        let mut prev: Option<&[u8]> = None;
        let mut children = Vec::with_capacity(elems.len());
        for (i, e) in elems.iter().enumerate() {
            if let Some(broken) = order_problem(e.key, prev, c.lower, c.upper) {
                self.problem_with(Some(c.id), || ProblemKind::KeyOrder {
                    node: NodeKind::Branch,
                    index: i,
                    key: Clipped::new(e.key),
                    rule: broken.rule(),
                    stack: Some(Self::stack(stack, c)),
                    inline_offset: None,
                });
            }
            if e.child == c.id {
                self.problem(Some(c.id), ProblemKind::SelfReference { index: i });
                continue;
            }
            prev = Some(e.key);
            let upper = elems.get(i + 1).map(|n| n.key).or(c.upper);
            children.push(Child {
                id: e.child,
                parent: Some(c.id),
                lower: Some(e.key),
                upper,
            });
        }
        children
    }

    /// Checks a leaf page (or an inline bucket's page), feeds its entries to
    /// the visitor and walks nested buckets.
    fn visit_leaf(
        &mut self,
        page: Page<'a>,
        lower: Option<&'a [u8]>,
        upper: Option<&'a [u8]>,
        inline_in: Option<u64>,
    ) {
        let inline = inline_in.is_some();
        let node = if inline {
            NodeKind::InlineLeaf
        } else {
            NodeKind::Leaf
        };
        let pid = if inline { inline_in } else { Some(page.id()) };
        let mut prev: Option<&[u8]> = None;
        for i in 0..page.count() {
            let e = match page.leaf(i) {
                Ok(e) => e,
                Err(err) => {
                    let kind = if inline {
                        ProblemKind::InlineRead(err)
                    } else {
                        ProblemKind::Read(err)
                    };
                    self.problem(pid, kind);
                    return;
                }
            };
            if let Some(broken) = order_problem(e.key, prev, lower, upper) {
                self.problem_with(pid, || ProblemKind::KeyOrder {
                    node,
                    index: i,
                    key: Clipped::new(e.key),
                    rule: broken.rule(),
                    stack: None,
                    inline_offset: inline.then(|| page.offset()),
                });
            }
            prev = Some(e.key);
            self.report.stats.entries += 1;
            self.v.entry(&self.path, &e);
            if e.is_bucket() {
                if inline {
                    self.problem_with(pid, || ProblemKind::InlineNestedBucket {
                        offset: page.offset(),
                        name: Clipped::new(e.key),
                    });
                    continue;
                }
                self.nested_bucket(page.id(), &e);
            }
        }
    }

    fn nested_bucket(&mut self, page_id: u64, e: &LeafElem<'a>) {
        let offset = value_offset(self.sh.db, e.value);
        let value = match BucketValue::decode(e.key, e.value, offset) {
            Ok(v) => v,
            Err(err) => {
                self.problem(Some(page_id), ProblemKind::Read(err));
                return;
            }
        };
        if matches!(value.root, BucketRoot::Page(_)) && e.value.len() != 16 {
            self.problem_with(Some(page_id), || ProblemKind::BucketValueLength {
                name: Clipped::new(e.key),
                len: e.value.len(),
            });
        }
        if self.path.len() >= MAX_NESTING {
            self.problem(
                Some(page_id),
                ProblemKind::NestingTooDeep { limit: MAX_NESTING },
            );
            return;
        }
        self.path.push(e.key);
        self.walk_bucket(value, Some(page_id));
        self.path.pop();
    }
}
