//! Waiting for the repository lock, and breaking one whose holder is gone.
//!
//! A push, check or read waits for a prune elsewhere to finish. In object
//! storage a prune that was killed leaves its lock object behind, and the
//! wait lasts until that lock is stale (30 minutes without renewal): the
//! waiter says so, on the notice [`Repository::on_lock_wait`] installs
//! (the CLI prints it on stderr), naming the lock, its holder and when it
//! goes stale, and `backup unlock` ([`Repository::unlock`]) removes stale
//! locks at once, or every lock with `all`.

use std::sync::Arc;

use super::backend::UnlockReport;
use super::error::{RepoError, Result};
use super::repository::Repository;

/// What a waiting lock taker tells.
type Tell = Arc<dyn Fn(&str) + Send + Sync>;

/// Where lock-wait messages go (nowhere by default).
#[derive(Clone, Default)]
pub(crate) struct Notice(Option<Tell>);

impl Notice {
    pub(crate) fn tell(&self, message: &str) {
        if let Some(f) = &self.0 {
            f(message);
        }
    }
}

impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Notice(set)"
        } else {
            "Notice(none)"
        })
    }
}

impl Repository {
    /// Has `notice` told, while a command waits for the repository lock
    /// (at once, then every minute), what it waits for: which lock, its
    /// holder (host and PID where known), how long ago it was renewed and
    /// until when the wait can last. The CLI prints these on stderr.
    pub fn on_lock_wait(&mut self, notice: impl Fn(&str) + Send + Sync + 'static) {
        self.lock_notice = Notice(Some(Arc::new(notice)));
    }

    /// Removes locks whose holders are gone: in object storage the lock
    /// objects not renewed for 30 minutes (by the store's clock), or with
    /// `all` every lock object, also those of commands still running (only
    /// for a holder known to be dead: two commands that both think they
    /// hold the lock can delete what the other needs). A local repository
    /// is locked with `flock`, which the kernel releases with its holder,
    /// so there is nothing to remove; the report says who holds it.
    pub fn unlock(&self, all: bool) -> Result<UnlockReport> {
        self.backend
            .unlock(all)
            .map_err(RepoError::io("unlock", self.path_of("locks")))
    }
}
