//! The structural check: everything Go bbolt's `tx.Check()` verifies in
//! v1.3.x and v1.4.x, and what it does not (element bounds, inline
//! buckets, bucket values, empty keys), in one walk of the page graph.
//!
//! The walk visits each reachable page exactly once: a page reached a second
//! time is reported as a multiple reference and not descended into again, so
//! cycles and shared subtrees cost nothing extra. Memory is two bitmaps of
//! one bit per page (bounded by the file length, never by a count read from
//! the file) and a stack bounded by [`MAX_DEPTH`].
//!
//! The same walk feeds a [`Visitor`] every leaf entry in key order, which is
//! how `snapshot status` hashes the database while it is being checked. Big
//! buckets are split at their top levels and walked on several threads; each
//! thread's visitor is merged back in key order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::bitmap::Bitmap;
use super::bucket::{BucketRoot, BucketValue, value_offset};
use super::cursor::MAX_DEPTH;
use super::db::Db;
use super::error::BoltError;
use super::freelist;
use super::page::{LeafElem, Page, PageHeader, PageKind};
pub use super::visitor::Visitor;

/// Most problems kept in a report; the rest are only counted.
pub const MAX_PROBLEMS: usize = 1000;
/// Deepest nesting of buckets walked.
pub const MAX_NESTING: usize = 64;
/// Subtrees a big bucket is split into before it is walked in parallel.
const FRONTIER_TARGET: usize = 64;

/// One thing wrong with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The page concerned, when there is one.
    pub page: Option<u64>,
    /// What is wrong, in the style of Go's messages.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.page {
            Some(p) => write!(f, "page {p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Counts of what the walk saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Problems found, in walk order (at most [`MAX_PROBLEMS`]).
    pub problems: Vec<Problem>,
    /// Problems found beyond those kept.
    pub omitted: u64,
    /// What the walk saw.
    pub stats: WalkStats,
}

impl CheckReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty() && self.omitted == 0
    }

    /// Total number of problems found.
    pub fn problem_count(&self) -> u64 {
        self.problems.len() as u64 + self.omitted
    }

    fn push(&mut self, p: Problem) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else {
            self.omitted += 1;
        }
    }

    fn append(&mut self, other: CheckReport) {
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
pub struct CheckOptions<'r> {
    /// Threads to use for big buckets (1 = no threads).
    pub threads: usize,
    /// Called every [`release_every`](CheckOptions::release_every) pages,
    /// to let the owner of a memory map drop pages already walked.
    pub release: Option<&'r (dyn Fn() + Sync)>,
    /// Pages between calls of `release`.
    pub release_every: u64,
}

impl Default for CheckOptions<'_> {
    fn default() -> Self {
        CheckOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            release: None,
            release_every: 2 * 1024,
        }
    }
}

impl CheckOptions<'_> {
    /// The defaults with `threads` threads (at least 1).
    ///
    /// ```
    /// let opts = etcdsnap::bolt::CheckOptions::default().with_threads(1);
    /// assert_eq!(opts.threads, 1);
    /// ```
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

impl std::fmt::Debug for CheckOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckOptions")
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
pub fn check(db: Db<'_>) -> CheckReport {
    walk(db, (), &CheckOptions::default()).0
}

/// Checks the structure of `db` and feeds `visitor` every leaf entry.
pub fn walk<V: Visitor>(db: Db<'_>, visitor: V, opts: &CheckOptions<'_>) -> (CheckReport, V) {
    let hwm = db.hwm();
    let file_pages = db.file_pages();
    let limit = hwm.min(file_pages);
    let mut report = CheckReport::default();
    if hwm > file_pages {
        report.push(Problem {
            page: None,
            message: format!(
                "high-water mark {hwm} is beyond the end of the file ({file_pages} pages)"
            ),
        });
    }
    let shared = Shared {
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
    let mut shared = shared;
    let synced = load_freelist(&mut shared, &mut report);

    let mut w = Walker {
        sh: &shared,
        v: visitor,
        report,
        parallel: opts.threads > 1,
    };
    let mut path = Vec::new();
    w.walk_paged_bucket(db.meta().root, &mut path);
    let Walker {
        v: visitor,
        mut report,
        ..
    } = w;

    if synced {
        for id in 2..limit {
            if !shared.reachable.get(id) && !shared.free.get(id) {
                report.push(Problem {
                    page: Some(id),
                    message: "unreachable unfreed".into(),
                });
            }
        }
    } else {
        report.stats.free_pages = (2..limit).filter(|&id| !shared.reachable.get(id)).count() as u64;
    }
    (report, visitor)
}

/// Loads a synced freelist into `shared.free`; false for NoFreelistSync.
fn load_freelist(sh: &mut Shared<'_, '_>, report: &mut CheckReport) -> bool {
    if !sh.db.meta().has_synced_freelist() {
        return false;
    }
    let id = sh.db.meta().freelist;
    let fl = match freelist::read(&sh.db) {
        Ok(Some(fl)) => fl,
        Ok(None) => return false,
        Err(e) => {
            report.push(problem_from(Some(id), &e));
            return true;
        }
    };
    for p in id..=id.saturating_add(u64::from(fl.overflow)) {
        if p < sh.limit && sh.reachable.set(p) {
            report.push(Problem {
                page: Some(p),
                message: "multiple references (freelist)".into(),
            });
        }
    }
    sh.free = Bitmap::new(sh.limit);
    for &f in &fl.ids {
        if f < 2 || f >= sh.hwm {
            report.push(Problem {
                page: Some(f),
                message: format!(
                    "listed in the freelist but outside [2, {}) (the high-water mark)",
                    sh.hwm
                ),
            });
        } else if f < sh.limit && sh.free.set(f) {
            report.push(Problem {
                page: Some(f),
                message: "already freed".into(),
            });
        }
    }
    report.stats.free_pages = fl.ids.len() as u64;
    true
}

fn problem_from(page: Option<u64>, e: &BoltError) -> Problem {
    let s = e.to_string();
    // The error's own text usually starts with "page N: "; keep one prefix.
    match page {
        Some(p) => {
            let prefix = format!("page {p}: ");
            Problem {
                page: Some(p),
                message: s.strip_prefix(&prefix).map(str::to_owned).unwrap_or(s),
            }
        }
        None => Problem {
            page: None,
            message: s,
        },
    }
}

struct Shared<'r, 'a> {
    db: Db<'a>,
    hwm: u64,
    limit: u64,
    reachable: Bitmap,
    free: Bitmap,
    opts: CheckOptions<'r>,
    entered: AtomicU64,
}

/// A child to visit, with the key bounds its keys must respect.
#[derive(Clone, Copy)]
struct Child<'a> {
    id: u64,
    /// The page that refers to it (for messages), if any.
    parent: Option<u64>,
    /// Keys must be >= this (closed).
    lower: Option<&'a [u8]>,
    /// Keys must be < this (open).
    upper: Option<&'a [u8]>,
}

struct BranchFrame<'a> {
    id: u64,
    children: Vec<Child<'a>>,
    next: usize,
}

struct Walker<'s, 'r, 'a, V> {
    sh: &'s Shared<'r, 'a>,
    v: V,
    report: CheckReport,
    parallel: bool,
}

impl<'s, 'r, 'a, V: Visitor> Walker<'s, 'r, 'a, V> {
    fn problem(&mut self, page: Option<u64>, message: String) {
        self.report.push(Problem { page, message });
    }

    fn stack_note(stack: &[BranchFrame<'_>], c: Child<'_>) -> String {
        let mut s = String::from(" (stack: [");
        if stack.is_empty()
            && let Some(p) = c.parent
        {
            s.push_str(&format!("... {p} "));
        }
        let id = c.id;
        for f in stack {
            s.push_str(&f.id.to_string());
            s.push(' ');
        }
        s.push_str(&id.to_string());
        s.push_str("])");
        s
    }

    /// Walks a bucket given by its decoded value.
    fn walk_bucket(&mut self, value: BucketValue<'a>, host: Option<u64>, path: &mut Vec<&'a [u8]>) {
        self.report.stats.buckets += 1;
        match value.root {
            BucketRoot::Inline(page) => {
                self.report.stats.inline_buckets += 1;
                self.visit_leaf(page, None, None, path, host);
            }
            BucketRoot::Page(id) => self.walk_paged_bucket(id, path),
        }
    }

    fn walk_paged_bucket(&mut self, root: u64, path: &mut Vec<&'a [u8]>) {
        let child = Child {
            id: root,
            parent: None,
            lower: None,
            upper: None,
        };
        if self.parallel && !path.is_empty() && self.is_branch(root) {
            self.walk_parallel(child, path);
        } else {
            self.walk_subtree(child, path);
        }
    }

    fn is_branch(&self, id: u64) -> bool {
        id < self.sh.limit
            && self
                .sh
                .db
                .raw_page(id)
                .is_ok_and(|p| p.kind() == PageKind::Branch)
    }

    /// Depth-first walk of the subtree under `start`.
    fn walk_subtree(&mut self, start: Child<'a>, path: &mut Vec<&'a [u8]>) {
        let mut stack: Vec<BranchFrame<'a>> = Vec::new();
        self.visit_node(start, &mut stack, path);
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
                Some(c) => self.visit_node(c, &mut stack, path),
                None => {
                    stack.pop();
                }
            }
        }
    }

    fn visit_node(
        &mut self,
        c: Child<'a>,
        stack: &mut Vec<BranchFrame<'a>>,
        path: &mut Vec<&'a [u8]>,
    ) {
        if stack.len() >= MAX_DEPTH {
            let note = Self::stack_note(stack, c);
            self.problem(
                Some(c.id),
                format!("tree deeper than {MAX_DEPTH} levels{note}"),
            );
            return;
        }
        let Some(page) = self.enter(c, stack) else {
            return;
        };
        if page.kind() == PageKind::Leaf {
            self.visit_leaf(page, c.lower, c.upper, path, None);
        } else {
            let children = self.branch_children(page, c, stack);
            stack.push(BranchFrame {
                id: c.id,
                children,
                next: 0,
            });
        }
    }

    /// Marks page `id` reachable and validates its header. Returns the page
    /// when it is a sound branch or leaf that has not been seen before.
    fn enter(&mut self, c: Child<'a>, stack: &[BranchFrame<'_>]) -> Option<Page<'a>> {
        let id = c.id;
        self.tick();
        let sh = self.sh;
        if id >= sh.hwm {
            let note = Self::stack_note(stack, c);
            self.problem(
                Some(id),
                format!("out of bounds: high-water mark is {}{note}", sh.hwm),
            );
            return None;
        }
        if id < 2 {
            let note = Self::stack_note(stack, c);
            self.problem(
                Some(id),
                format!("multiple references: a branch or bucket points at meta page {id}{note}"),
            );
            return None;
        }
        let page = match sh.db.raw_page(id) {
            Ok(p) => p,
            Err(e) => {
                self.report.push(problem_from(Some(id), &e));
                return None;
            }
        };
        if sh.reachable.set(id) {
            let note = Self::stack_note(stack, c);
            self.problem(Some(id), format!("multiple references{note}"));
            return None;
        }
        let overflow = u64::from(page.header().overflow);
        for k in 1..=overflow {
            let p = id.saturating_add(k);
            if p >= sh.hwm {
                self.problem(
                    Some(id),
                    format!(
                        "overflow page {p} is out of bounds: high-water mark is {}",
                        sh.hwm
                    ),
                );
                break;
            }
            if sh.reachable.set(p) {
                let note = Self::stack_note(stack, c);
                self.problem(
                    Some(p),
                    format!("multiple references (overflow of page {id}){note}"),
                );
                break;
            }
        }
        self.report.stats.overflow_pages += overflow;
        let found = page.header().id;
        if found != id {
            let note = Self::stack_note(stack, c);
            let what = if page.header()
                == (PageHeader {
                    id: 0,
                    flags: 0,
                    count: 0,
                    overflow: 0,
                }) {
                "page header is all zeros (a lost write?)".to_owned()
            } else {
                format!("page header identifies the page as {found}")
            };
            self.problem(
                Some(id),
                format!("{what} (byte offset {}){note}", page.offset()),
            );
            return None;
        }
        if sh.free.get(id) {
            self.problem(Some(id), "reachable freed".into());
        }
        match page.kind() {
            PageKind::Branch => self.report.stats.branch_pages += 1,
            PageKind::Leaf => self.report.stats.leaf_pages += 1,
            other => {
                let note = Self::stack_note(stack, c);
                self.problem(Some(id), format!("invalid type: {}{note}", other.go_name()));
                return None;
            }
        }
        if let Err(e) = page.check_element_table() {
            self.report.push(problem_from(Some(id), &e));
            return None;
        }
        if page.kind() == PageKind::Branch && page.count() == 0 {
            self.problem(Some(id), "branch page has no elements".into());
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
    fn branch_children(
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
                    self.report.push(problem_from(Some(c.id), &e));
                    break;
                }
            }
        }
        let mut prev: Option<&[u8]> = None;
        let mut children = Vec::with_capacity(elems.len());
        for (i, e) in elems.iter().enumerate() {
            if let Some(msg) = order_problem("branch", i, e.key, prev, c.lower, c.upper) {
                let note = Self::stack_note(stack, c);
                self.problem(Some(c.id), format!("{msg}{note}"));
            }
            if e.child == c.id {
                self.problem(
                    Some(c.id),
                    format!("branch element {i} points at its own page"),
                );
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
        path: &mut Vec<&'a [u8]>,
        inline_in: Option<u64>,
    ) {
        let inline = inline_in.is_some();
        let what = if inline { "inline leaf" } else { "leaf" };
        let pid = if inline { inline_in } else { Some(page.id()) };
        let mut prev: Option<&[u8]> = None;
        for i in 0..page.count() {
            let e = match page.leaf(i) {
                Ok(e) => e,
                Err(err) => {
                    let mut p = problem_from(pid, &err);
                    if inline {
                        p.message = format!("in an inline bucket: {}", p.message);
                    }
                    self.report.push(p);
                    return;
                }
            };
            if let Some(msg) = order_problem(what, i, e.key, prev, lower, upper) {
                let at = if inline {
                    format!(" (inline bucket at byte offset {})", page.offset())
                } else {
                    String::new()
                };
                self.problem(pid, format!("{msg}{at}"));
            }
            prev = Some(e.key);
            self.report.stats.entries += 1;
            self.v.entry(path, &e);
            if e.is_bucket() {
                if inline {
                    self.problem(
                        pid,
                        format!(
                            "inline bucket at byte offset {} contains a nested bucket {:?}",
                            page.offset(),
                            String::from_utf8_lossy(e.key)
                        ),
                    );
                    continue;
                }
                self.nested_bucket(page.id(), &e, path);
            }
        }
    }

    fn nested_bucket(&mut self, page_id: u64, e: &LeafElem<'a>, path: &mut Vec<&'a [u8]>) {
        let offset = value_offset(self.sh.db, e.value);
        let value = match BucketValue::decode(e.key, e.value, offset) {
            Ok(v) => v,
            Err(err) => {
                self.report.push(problem_from(Some(page_id), &err));
                return;
            }
        };
        if matches!(value.root, BucketRoot::Page(_)) && e.value.len() != 16 {
            self.problem(
                Some(page_id),
                format!(
                    "bucket {:?}: value has {} bytes, a bucket with its own pages has 16",
                    String::from_utf8_lossy(e.key),
                    e.value.len()
                ),
            );
        }
        if path.len() >= MAX_NESTING {
            self.problem(
                Some(page_id),
                format!("buckets nested deeper than {MAX_NESTING} levels"),
            );
            return;
        }
        path.push(e.key);
        self.walk_bucket(value, Some(page_id), path);
        path.pop();
    }

    /// Expands the top levels of a big bucket on this thread, then walks the
    /// subtrees on worker threads and merges their results in key order.
    fn walk_parallel(&mut self, root: Child<'a>, path: &mut Vec<&'a [u8]>) {
        let mut frontier = vec![root];
        let mut levels = 0;
        while frontier.len() < FRONTIER_TARGET
            && levels < 4
            && frontier.iter().all(|c| self.is_branch(c.id))
        {
            let mut next = Vec::new();
            for c in frontier {
                if let Some(page) = self.enter(c, &[]) {
                    next.extend(self.branch_children(page, c, &[]));
                }
            }
            frontier = next;
            levels += 1;
        }
        let threads = self.sh.opts.threads.max(1);
        let chunks = frontier.len().min(threads * 8).max(1);
        let per = frontier.len().div_ceil(chunks).max(1);
        let tasks: Vec<&[Child<'a>]> = frontier.chunks(per).collect();
        let next_task = AtomicUsize::new(0);
        let results: Mutex<Vec<(usize, V, CheckReport)>> = Mutex::new(Vec::new());
        let sh = self.sh;
        let forks: Vec<Mutex<Option<V>>> = tasks
            .iter()
            .map(|_| Mutex::new(Some(self.v.fork())))
            .collect();
        let path_now: &[&'a [u8]] = path;
        std::thread::scope(|scope| {
            for _ in 0..threads.min(tasks.len()) {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next_task.fetch_add(1, Ordering::Relaxed);
                        let Some(task) = tasks.get(i) else { break };
                        let fork = forks.get(i).and_then(|m| m.lock().ok()?.take());
                        let Some(v) = fork else { break };
                        let mut w = Walker {
                            sh,
                            v,
                            report: CheckReport::default(),
                            parallel: false,
                        };
                        let mut p = path_now.to_vec();
                        for c in task.iter() {
                            w.walk_subtree(*c, &mut p);
                        }
                        mine.push((i, w.v, w.report));
                    }
                    if let Ok(mut r) = results.lock() {
                        r.extend(mine);
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap_or_default();
        results.sort_by_key(|r| r.0);
        for (_, v, report) in results {
            self.v.merge(v);
            self.report.append(report);
        }
    }
}

/// Go's key-order rules (bbolt v1.3.7+), extended to empty keys.
fn order_problem(
    what: &str,
    i: usize,
    key: &[u8],
    prev: Option<&[u8]>,
    lower: Option<&[u8]>,
    upper: Option<&[u8]>,
) -> Option<String> {
    let hex = |k: &[u8]| k.iter().map(|b| format!("{b:02x}")).collect::<String>();
    if key.is_empty() {
        return Some(format!("{what} element {i} has an empty key"));
    }
    match prev {
        Some(p) if p >= key => {
            let rel = if p == key { "=" } else { "<" };
            return Some(format!(
                "key[{i}]=(hex){} on {what} page needs to be > (found {rel}) than previous element (hex){}",
                hex(key),
                hex(p)
            ));
        }
        None => {
            if let Some(lo) = lower.filter(|lo| key < *lo) {
                return Some(format!(
                    "the first key[{i}]=(hex){} on {what} page needs to be >= the key in the ancestor (hex){}",
                    hex(key),
                    hex(lo)
                ));
            }
        }
        _ => {}
    }
    if let Some(up) = upper.filter(|up| key >= *up) {
        return Some(format!(
            "key[{i}]=(hex){} on {what} page needs to be < than key of the next element in ancestor (hex){}",
            hex(key),
            hex(up)
        ));
    }
    None
}
