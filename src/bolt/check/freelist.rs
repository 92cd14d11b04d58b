//! The synced freelist against the page graph: every listed id in range and
//! listed once, no page in use listed (the freelist's own pages included;
//! the walk checks the tree's pages and their overflow pages), and every
//! page either reachable or free.

use super::super::freelist;
use super::problem::{Problem, ProblemKind};
use super::{Shared, WalkReport};
use crate::bolt::bitmap::Bitmap;

/// Loads a synced freelist into `sh.free` and checks its own pages; false
/// for NoFreelistSync, where the free set is by definition what the walk
/// does not reach.
pub(super) fn load(sh: &mut Shared<'_, '_>, report: &mut WalkReport) -> bool {
    if !sh.db.meta().has_synced_freelist() {
        return false;
    }
    let id = sh.db.meta().freelist;
    let fl = match freelist::read(&sh.db) {
        Ok(Some(fl)) => fl,
        Ok(None) => return false,
        Err(e) => {
            report.push(Problem::new(Some(id), ProblemKind::Read(e)));
            return true;
        }
    };
    let span = id..=id.saturating_add(u64::from(fl.overflow));
    for p in span.clone() {
        if p < sh.limit && sh.reachable.set(p) {
            report.push(Problem::new(
                Some(p),
                ProblemKind::FreelistMultipleReference,
            ));
        }
    }
    sh.free = Bitmap::new(sh.limit);
    for &f in &fl.ids {
        if f < 2 || f >= sh.hwm {
            report.push(Problem::new(
                Some(f),
                ProblemKind::FreeOutOfRange { hwm: sh.hwm },
            ));
        } else if f < sh.limit && sh.free.set(f) {
            report.push(Problem::new(Some(f), ProblemKind::AlreadyFreed));
        }
    }
    // Go marks the freelist's pages reachable but never compares them with
    // the free set: a freelist that lists itself gets its own pages handed
    // out by the next write while they are still being read.
    for p in span {
        if sh.free.get(p) {
            report.push(Problem::new(
                Some(p),
                ProblemKind::FreelistPageFreed { freelist: id },
            ));
        }
    }
    report.stats.free_pages = fl.ids.len() as u64;
    true
}

/// After the walk: pages neither reachable nor free (synced freelist), or
/// the count of free pages (NoFreelistSync).
pub(super) fn finish(sh: &Shared<'_, '_>, synced: bool, report: &mut WalkReport) {
    if synced {
        for id in 2..sh.limit {
            if !sh.reachable.get(id) && !sh.free.get(id) {
                report.push(Problem::new(Some(id), ProblemKind::UnreachableUnfreed));
            }
        }
    } else {
        report.stats.free_pages = (2..sh.limit).filter(|&id| !sh.reachable.get(id)).count() as u64;
    }
}
