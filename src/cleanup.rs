//! What this process has staged and not published yet: the hidden
//! directories a restore builds, the `FILE.part` a save writes. Each is
//! removed by its owner when the operation fails; [`abandon`] is for a
//! process that is about to exit on a signal instead, without unwinding
//! to those owners (`etcdsnap`'s commands call it from their signal
//! thread).
//!
//! Everything that is staged is registered *before* it is created, and
//! every step that publishes (a rename into place) runs under the same
//! lock as [`abandon`]: whichever comes first wins, so a published name
//! is never removed half-way and a staged one is never published after
//! it was removed. Once [`abandon`] has run, the lock stays taken: any
//! later staging or publishing in the process waits until it exits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Staged paths by registration.
struct Registry {
    next: u64,
    entries: BTreeMap<u64, Vec<PathBuf>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    entries: BTreeMap::new(),
});

/// Times a directory removal is retried when the operation still running
/// on another thread created something in it meanwhile.
const REMOVE_ATTEMPTS: usize = 20;

fn lock() -> MutexGuard<'static, Registry> {
    // A panic while the lock was held leaves the map as consistent as any
    // other moment: every update is a single insert, remove or assignment.
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One staged thing (a file or a directory, and what has been published
/// from it but not yet kept). Dropping it forgets the paths; the owner
/// removes them first if they are not to stay.
#[derive(Debug)]
pub(crate) struct Entry(u64);

impl Entry {
    /// Registers `path`, which is about to be created.
    pub(crate) fn new(path: &Path) -> Entry {
        let mut r = lock();
        let id = r.next;
        r.next = r.next.wrapping_add(1);
        r.entries.insert(id, vec![path.to_path_buf()]);
        Entry(id)
    }

    /// Runs `f` on the entry's paths under the registry's lock: a rename
    /// into place done in `f`, and the paths updated to say where things
    /// now are, happen at once for [`abandon`].
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Vec<PathBuf>) -> T) -> T {
        let mut r = lock();
        let mut paths = r.entries.remove(&self.0).unwrap_or_default();
        let out = f(&mut paths);
        r.entries.insert(self.0, paths);
        out
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        lock().entries.remove(&self.0);
    }
}

fn remove(path: &Path) -> bool {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !md.is_dir() {
        return std::fs::remove_file(path).is_ok();
    }
    for _ in 0..REMOVE_ATTEMPTS {
        if std::fs::remove_dir_all(path).is_ok() || std::fs::symlink_metadata(path).is_err() {
            return true;
        }
    }
    false
}

/// Removes everything this process has staged and not published, and
/// returns what it removed. For a signal handler that exits the process
/// next: from here on, staging or publishing anything waits forever.
pub fn abandon() -> Vec<PathBuf> {
    let r = lock();
    let mut removed = Vec::new();
    for paths in r.entries.values() {
        // Published entries (renamed into place) first, then what they
        // came from.
        for p in paths.iter().rev() {
            if remove(p) {
                removed.push(p.clone());
            }
        }
    }
    // Held until the process exits (see the module doc).
    std::mem::forget(r);
    removed
}

/// `SIGINT`, `SIGTERM`, `SIGHUP`, `SIGQUIT`, or `signal N`: the name of a
/// signal a command stops on, for messages.
pub fn signal_name(sig: usize) -> String {
    match i32::try_from(sig) {
        Ok(libc::SIGINT) => "SIGINT".into(),
        Ok(libc::SIGTERM) => "SIGTERM".into(),
        Ok(libc::SIGHUP) => "SIGHUP".into(),
        Ok(libc::SIGQUIT) => "SIGQUIT".into(),
        _ => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_follow_their_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.part");
        let e = Entry::new(&a);
        std::fs::write(&a, b"x").expect("write");
        let b = dir.path().join("b");
        e.with(|p| {
            std::fs::rename(&a, &b).expect("rename");
            *p = vec![b.clone()];
        });
        assert_eq!(lock().entries.get(&e.0), Some(&vec![b.clone()]));
        let id = e.0;
        drop(e);
        assert!(!lock().entries.contains_key(&id));
        assert!(b.exists(), "dropping an entry removes nothing");
    }

    #[test]
    fn remove_takes_files_and_trees() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = dir.path().join("t");
        std::fs::create_dir_all(t.join("member/wal")).expect("mkdir");
        std::fs::write(t.join("member/wal/x"), b"x").expect("write");
        let f = dir.path().join("f.part");
        std::fs::write(&f, b"x").expect("write");
        assert!(remove(&t) && remove(&f));
        assert!(!remove(&f), "gone already");
        assert!(!t.exists() && !f.exists());
    }
}
