//! `backup push --from-endpoint`: take the snapshot from a live etcd with
//! `snapshot save`'s code (digest and structure checked before it is kept),
//! into a temporary file beside the repository, and push that.

use std::sync::atomic::{AtomicU64, Ordering};

use super::error::{RepoError, Result};
use super::push::{PushOptions, PushSummary};
use super::repository::Repository;
use crate::progress::Progress;
use crate::save::{SaveOptions, save};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Removes the temporary snapshot however the push ends.
/// The saved file (and its `.part`), removed when the push is done, and
/// by a signal's cleanup if the process ends first.
struct Scratch {
    path: std::path::PathBuf,
    _staged: crate::cleanup::Entry,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_file(crate::atomic_file::part_path(&self.path));
    }
}

impl Repository {
    /// Saves a snapshot from the one endpoint of `save_opts` (its `path`
    /// is replaced by a temporary file in the repository's `tmp/`) and
    /// pushes it; the temporary file is removed afterwards. The source
    /// recorded is the endpoint. `progress` hears the save's
    /// [`Phase::Receive`](crate::Phase::Receive) reports, then the push's.
    pub fn push_from_endpoint(
        &self,
        save_opts: &SaveOptions,
        opts: &PushOptions,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<PushSummary> {
        let dir = self.backend.index_dir().join("tmp");
        std::fs::create_dir_all(&dir).map_err(RepoError::io("mkdir", &dir))?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // The name carries the pid, so a killed push's file is removed
        // as stale by the next command.
        let path = dir.join(format!("endpoint.{}.{n}.tmp", std::process::id()));
        let staged = crate::cleanup::Entry::new(&path);
        staged.with(|paths| paths.push(crate::atomic_file::part_path(&path)));
        let scratch = Scratch {
            path,
            _staged: staged,
        };
        let mut so = save_opts.clone();
        so.path = scratch.path.clone();
        let saved = save(&so, progress)?;
        let mut o = opts.clone();
        if o.source.is_none() {
            o.source = Some(saved.endpoint.clone());
        }
        self.push_with_progress(&scratch.path, &o, progress)
    }
}
