//! Big buckets walked on several threads: the top levels are expanded on
//! the calling thread, the subtrees below them walked by workers, and the
//! workers' results merged back in key order.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::walker::{Child, Walker};
use super::{Visitor, WalkReport};

/// Subtrees a big bucket is split into before it is walked in parallel.
const FRONTIER_TARGET: usize = 64;

impl<'a, V: Visitor> Walker<'_, '_, 'a, V> {
    /// Expands the top levels of a big bucket on this thread, then walks the
    /// subtrees on worker threads and merges their results in key order.
    pub(super) fn walk_parallel(&mut self, root: Child<'a>) {
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
        let results: Mutex<Vec<(usize, V, WalkReport)>> = Mutex::new(Vec::new());
        let sh = self.sh;
        let forks: Vec<Mutex<Option<V>>> = tasks
            .iter()
            .map(|_| Mutex::new(Some(self.v.fork())))
            .collect();
        let path_now: &[&'a [u8]] = &self.path;
        std::thread::scope(|scope| {
            for _ in 0..threads.min(tasks.len()) {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next_task.fetch_add(1, Ordering::Relaxed);
                        let Some(task) = tasks.get(i) else { break };
                        let fork = forks.get(i).and_then(|m| m.lock().ok()?.take());
                        let Some(v) = fork else { break };
                        let mut w = Walker::new(sh, v, false, path_now.to_vec());
                        for c in task.iter() {
                            w.walk_subtree(*c);
                        }
                        w.v.range_done();
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
