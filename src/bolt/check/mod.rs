//! The structural check: everything Go bbolt's `tx.Check()` verifies in
//! v1.3.x and v1.4.x, and what it does not (element bounds, inline
//! buckets, bucket values, empty keys), in one walk of the page graph.
//!
//! The walk visits each reachable page exactly once: a page reached a second
//! time is reported as a multiple reference and not descended into again, so
//! cycles and shared subtrees cost nothing extra. Memory is two bitmaps of
//! one bit per page (bounded by the file length, never by a count read from
//! the file) and a stack bounded by [`MAX_DEPTH`](super::cursor::MAX_DEPTH).
//!
//! The same walk feeds a [`Visitor`] every leaf entry in key order, which is
//! how `snapshot status` hashes the database while it is being checked. Big
//! buckets are split at their top levels and walked on several threads; each
//! thread's visitor is merged back in key order.

mod freelist;
mod order;
mod parallel;
mod problem;
mod walker;

use std::sync::atomic::AtomicU64;

use super::bitmap::Bitmap;
use super::db::Db;
pub use super::visitor::Visitor;
pub use problem::{NodeKind, OrderRule, Problem, ProblemKind, Stack};
use walker::Walker;

/// Most problems kept in a report; the rest are only counted.
pub const MAX_PROBLEMS: usize = 1000;
/// Deepest nesting of buckets walked.
pub const MAX_NESTING: usize = 64;

/// Counts of what the walk saw.
#[derive(Debug, Clone, Default)]
#[cfg_attr(test, derive(PartialEq, Eq))]
pub struct WalkStats {
    /// Branch pages reached.
    pub branch_pages: u64,
    /// Leaf pages reached.
    pub leaf_pages: u64,
    /// Overflow pages belonging to reached pages.
    pub overflow_pages: u64,
    /// Buckets (the root bucket not included).
    pub buckets: u64,
    /// Of those, inline buckets.
    pub inline_buckets: u64,
    /// Leaf entries (keys), nested bucket entries included.
    pub entries: u64,
    /// Pages listed in a synced freelist, or unreachable (NoFreelistSync).
    pub free_pages: u64,
}

impl WalkStats {
    fn add(&mut self, o: &WalkStats) {
        self.branch_pages += o.branch_pages;
        self.leaf_pages += o.leaf_pages;
        self.overflow_pages += o.overflow_pages;
        self.buckets += o.buckets;
        self.inline_buckets += o.inline_buckets;
        self.entries += o.entries;
        self.free_pages += o.free_pages;
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, Default)]
pub struct WalkReport {
    /// Problems found, in walk order (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Problems found beyond those kept.
    pub omitted: u64,
    /// What the walk saw.
    pub stats: WalkStats,
}

impl WalkReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.omitted == 0
    }

    /// Total number of problems found.
    pub fn problem_count(&self) -> u64 {
        self.problems.len() as u64 + self.omitted
    }

    /// Whether a further problem would only be counted.
    fn is_full(&self) -> bool {
        self.problems.len() >= MAX_PROBLEMS
    }

    fn push(&mut self, p: Problem) {
        if !self.is_full() {
            self.problems.push(p);
        } else {
            self.omitted += 1;
        }
    }

    fn append(&mut self, other: WalkReport) {
        for p in other.problems {
            self.push(p);
        }
        self.omitted += other.omitted;
        self.stats.add(&other.stats);
    }
}

/// How to walk.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct WalkOptions<'r> {
    /// Threads to use for big buckets (1 = no threads).
    pub threads: usize,
    /// Called every [`release_every`](WalkOptions::release_every) pages,
    /// to let the owner of a memory map drop pages already walked.
    pub(crate) release: Option<&'r (dyn Fn() + Sync)>,
    /// Pages between calls of `release`.
    pub(crate) release_every: u64,
}

impl Default for WalkOptions<'_> {
    fn default() -> Self {
        WalkOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            release: None,
            release_every: 2 * 1024,
        }
    }
}

impl<'r> WalkOptions<'r> {
    /// Called every [`release_every`](WalkOptions::release_every) pages.
    pub(crate) fn with_release(mut self, release: &'r (dyn Fn() + Sync)) -> Self {
        self.release = Some(release);
        self
    }

    /// The defaults with `threads` threads (at least 1).
    ///
    /// ```
    /// let opts = etcdsnap::bolt::WalkOptions::default().with_threads(1);
    /// assert_eq!(opts.threads, 1);
    /// ```
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

impl std::fmt::Debug for WalkOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalkOptions")
            .field("threads", &self.threads)
            .field("release", &self.release.is_some())
            .field("release_every", &self.release_every)
            .finish()
    }
}

/// Checks the structure of `db`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let bytes = std::fs::read("testdata/snapshots/k8s-v35.member.db")?;
/// let db = etcdsnap::bolt::Db::open(&bytes)?;
/// let report = etcdsnap::bolt::check(db);
/// assert!(report.is_ok(), "{:?}", report.problems);
/// assert!(report.stats.branch_pages > 0);
/// # Ok(()) }
/// ```
pub fn check(db: Db<'_>) -> WalkReport {
    walk(db, (), &WalkOptions::default()).0
}

/// Checks the structure of `db` and feeds `visitor` every leaf entry.
pub fn walk<V: Visitor>(db: Db<'_>, visitor: V, opts: &WalkOptions<'_>) -> (WalkReport, V) {
    let hwm = db.hwm();
    let file_pages = db.file_pages();
    let limit = hwm.min(file_pages);
    let mut report = WalkReport::default();
    let meta = db.meta();
    if meta.page_size != db.page_size() {
        report.push(Problem::new(
            Some(u64::from(db.active_meta_page())),
            ProblemKind::MetaPageSize {
                declared: meta.page_size,
                used: db.page_size(),
                txid: meta.txid,
            },
        ));
    }
    if hwm > file_pages {
        report.push(Problem::new(
            None,
            ProblemKind::HwmBeyondFile { hwm, file_pages },
        ));
    }
    let mut shared = Shared {
        db,
        hwm,
        limit,
        reachable: Bitmap::new(limit),
        free: Bitmap::new(0),
        opts: *opts,
        entered: AtomicU64::new(0),
    };
    for id in [0, 1] {
        shared.reachable.set(id);
    }
    let synced = freelist::load(&mut shared, &mut report);

    let mut w = Walker::new(&shared, visitor, opts.threads > 1, Vec::new());
    w.report = report;
    w.walk_paged_bucket(db.meta().root);
    let Walker {
        v: visitor,
        mut report,
        ..
    } = w;
    freelist::finish(&shared, synced, &mut report);
    (report, visitor)
}

/// What every walker of one check shares: the database, the bitmaps of
/// reachable and free pages, the options.
struct Shared<'r, 'a> {
    db: Db<'a>,
    hwm: u64,
    /// `min(hwm, whole pages in the file)`: the size of the bitmaps.
    limit: u64,
    reachable: Bitmap,
    free: Bitmap,
    opts: WalkOptions<'r>,
    /// Pages entered so far, for `opts.release`.
    entered: AtomicU64,
}

#[cfg(test)]
mod tests;
