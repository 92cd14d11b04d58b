//! The visitor a walk feeds with every leaf entry, in key order, and how
//! visitors of parts of a bucket walked in parallel are joined.

use super::page::LeafElem;

/// Receives every leaf entry of every bucket in key order during a walk.
///
/// `path` holds the names of the buckets from the root down to the bucket
/// that holds the entry: empty for the root bucket's entries (the top-level
/// bucket names), one name for a top-level bucket's entries, and so on.
/// Nested bucket entries are passed too ([`LeafElem::is_bucket`]), before
/// the nested bucket's own entries.
///
/// Big buckets are walked in parallel: [`fork`](Visitor::fork) makes an
/// empty visitor for a later part of the key space, and
/// [`merge`](Visitor::merge) appends such a part's results, in key order.
pub trait Visitor: Send + Sized {
    /// A fresh visitor for a contiguous later range of the same bucket.
    fn fork(&self) -> Self;
    /// Appends the results of `later`, which covered the keys right after
    /// the ones this visitor has seen.
    fn merge(&mut self, later: Self);
    /// One leaf entry.
    fn entry(&mut self, path: &[&[u8]], elem: &LeafElem<'_>);
    /// This visitor has seen the last entry of its range; it is merged
    /// later, once the ranges before it are done. A visitor that holds much
    /// per entry can shrink it here, so that finished ranges waiting for
    /// their merge do not add up.
    fn range_done(&mut self) {}
}

impl Visitor for () {
    fn fork(&self) -> Self {}
    fn merge(&mut self, _later: Self) {}
    fn entry(&mut self, _path: &[&[u8]], _elem: &LeafElem<'_>) {}
}

impl<A: Visitor, B: Visitor> Visitor for (A, B) {
    fn fork(&self) -> Self {
        (self.0.fork(), self.1.fork())
    }

    fn merge(&mut self, later: Self) {
        self.0.merge(later.0);
        self.1.merge(later.1);
    }

    fn entry(&mut self, path: &[&[u8]], elem: &LeafElem<'_>) {
        self.0.entry(path, elem);
        self.1.entry(path, elem);
    }

    fn range_done(&mut self) {
        self.0.range_done();
        self.1.range_done();
    }
}
