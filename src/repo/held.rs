//! Which snapshots the repository holds, recorded apart from their
//! manifests, so that a manifest that disappears without a forget (an
//! `rm`, a lifecycle rule, a lost object) is reported as missing instead
//! of the snapshot silently dropping out of the listing.
//!
//! ```text
//! known/<id>       written by push after the manifest: "this was pushed"
//! forgotten/<id>   written by forget before it removes anything: "this
//!                  was removed on purpose" (removed again by prune)
//! ```
//!
//! Both are empty objects in the repository itself, not in the index, so
//! they hold for a repository in object storage whose local index cache
//! is made again from the objects.
//!
//! A snapshot is present when its manifest exists and it is not
//! forgotten; missing when it is known, its manifest is gone and it is
//! not forgotten. Every step of push and forget leaves one of these
//! readings, whatever the moment a process is killed:
//! * push writes the manifest, then `known/`: killed in between, the
//!   snapshot is present and merely not guarded;
//! * forget writes `forgotten/` (the decision, made durable first), then
//!   removes the manifest, then `known/`: killed anywhere after the first
//!   write, the snapshot reads as forgotten, never as missing; before it,
//!   as present. Prune, holding the lock exclusively, finishes what a
//!   forget left and removes the `forgotten/` objects.
//!
//! Readers list `known/`, then `snapshots/`, then `forgotten/`: a push
//! publishes in that first order, so its `known/` object is never seen
//! without its manifest; and the `forgotten/` object that a forget wrote
//! before removing a manifest stays until prune, which no reader runs
//! beside, so it is still there when listed last.
//!
//! Repositories written before these records have no `known/` objects:
//! their snapshots are present as before, and not guarded until the next
//! prune records them (as it records a snapshot whose push was stopped
//! between its manifest and its record). Only prune may: it holds the
//! lock exclusively, so no forget runs beside it whose snapshot it would
//! record again after the forget removed the record.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use super::backend::{Backend, keys};
use super::codec::hex;
use super::error::{RepoError, Result};
use super::repository::{Repository, SnapshotId};

/// Prefix of the records of pushed snapshots.
pub(crate) const KNOWN: &str = "known/";
/// Prefix of the records of forgotten snapshots.
pub(crate) const FORGOTTEN: &str = "forgotten/";

/// `known/<id>`.
pub(crate) fn known(id: &[u8; 32]) -> String {
    format!("{KNOWN}{}", hex(id))
}

/// `forgotten/<id>`.
pub(crate) fn forgotten(id: &[u8; 32]) -> String {
    format!("{FORGOTTEN}{}", hex(id))
}

/// Why a missing snapshot is reported (after `snapshots/<id>: `).
pub(crate) const MISSING: &str = "the manifest is missing: the repository recorded the push (known/) and no forget removed it; `backup forget` the ID to accept the loss";

/// The snapshots as the records read them.
#[derive(Debug, Default)]
pub(crate) struct Held {
    /// Manifest objects of snapshots not forgotten: ID and object size.
    pub present: BTreeMap<[u8; 32], u64>,
    /// Known snapshots whose manifest is gone and that no forget removed.
    pub missing: Vec<[u8; 32]>,
    /// Forgotten snapshots whose manifest or record is still there (an
    /// interrupted forget, or one prune has not finished yet).
    pub unfinished: Vec<[u8; 32]>,
    /// Present snapshots without a `known/` record.
    pub unrecorded: Vec<[u8; 32]>,
    /// Keys under `snapshots/` that do not name a manifest.
    pub strays: Vec<String>,
}

fn ids(listed: &[(String, u64)], prefix: &str) -> BTreeSet<[u8; 32]> {
    listed
        .iter()
        .filter_map(|(k, _)| keys::parse(prefix, k))
        .collect()
}

/// Lists the records and the manifests, in the order the module
/// documentation gives.
pub(crate) fn list(backend: &dyn Backend) -> io::Result<Held> {
    let known = ids(&backend.list(KNOWN)?, KNOWN);
    let manifests = backend.list(keys::SNAPSHOTS)?;
    let forgotten = ids(&backend.list(FORGOTTEN)?, FORGOTTEN);
    let mut held = Held::default();
    let mut listed = BTreeSet::new();
    for (key, size) in manifests {
        match keys::parse(keys::SNAPSHOTS, &key) {
            Some(id) => {
                listed.insert(id);
                if !forgotten.contains(&id) {
                    held.present.insert(id, size);
                }
            }
            None => held.strays.push(key),
        }
    }
    held.missing = known
        .iter()
        .filter(|id| !listed.contains(*id) && !forgotten.contains(*id))
        .copied()
        .collect();
    held.unrecorded = held
        .present
        .keys()
        .filter(|id| !known.contains(*id))
        .copied()
        .collect();
    held.unfinished = forgotten
        .iter()
        .filter(|id| listed.contains(*id) || known.contains(*id))
        .copied()
        .collect();
    Ok(held)
}

impl Repository {
    /// Removes snapshots on purpose: each one's `forgotten/` record first,
    /// then its manifest and its `known/` record (see the module
    /// documentation for why in this order). The index is the caller's.
    pub(crate) fn retire(&self, ids: &[[u8; 32]]) -> Result<()> {
        for id in ids {
            let key = forgotten(id);
            self.backend
                .write(&key, &[])
                .map_err(RepoError::io("write", self.path_of(&key)))?;
        }
        for id in ids {
            for key in [keys::snapshot(id), known(id)] {
                self.backend
                    .remove(&key)
                    .map_err(RepoError::io("remove", self.path_of(&key)))?;
            }
        }
        Ok(())
    }

    /// Records a pushed snapshot (after its manifest is published). A
    /// `forgotten/` record of the same ID (the same manifest pushed again
    /// after a forget) is removed after it, so the push is listed.
    pub(crate) fn record_push(&self, id: &[u8; 32]) -> Result<()> {
        let key = known(id);
        self.backend
            .write(&key, &[])
            .map_err(RepoError::io("write", self.path_of(&key)))?;
        let key = forgotten(id);
        self.backend
            .remove(&key)
            .map_err(RepoError::io("remove", self.path_of(&key)))
    }

    /// The missing snapshot (see [`list`]) whose ID starts with `prefix`.
    pub(crate) fn find_missing(&self, prefix: &str) -> Result<SnapshotId> {
        let held = list(self.backend.as_ref())
            .map_err(RepoError::io("list", self.path_of(keys::SNAPSHOTS)))?;
        let p = prefix.to_ascii_lowercase();
        let mut found = held.missing.iter().filter(|id| hex(*id).starts_with(&p));
        match (found.next(), found.next()) {
            (Some(one), None) => Ok(SnapshotId(*one)),
            (Some(_), Some(_)) => Err(RepoError::AmbiguousId(prefix.into())),
            (None, _) => Err(RepoError::NoSuchSnapshot(prefix.into())),
        }
    }

    /// Puts the records in order (prune only, under the exclusive lock):
    /// finishes every forget, removing what it left and then its
    /// `forgotten/` record, and records every present snapshot that has no
    /// `known/` record.
    pub(crate) fn settle_records(&self) -> Result<()> {
        let held = list(self.backend.as_ref())
            .map_err(RepoError::io("list", self.path_of(keys::SNAPSHOTS)))?;
        let listed = self
            .backend
            .list(FORGOTTEN)
            .map_err(RepoError::io("list", self.path_of(FORGOTTEN)))?;
        for id in ids(&listed, FORGOTTEN) {
            for key in [keys::snapshot(&id), known(&id), forgotten(&id)] {
                self.backend
                    .remove(&key)
                    .map_err(RepoError::io("remove", self.path_of(&key)))?;
            }
        }
        for id in &held.unrecorded {
            let key = known(id);
            self.backend
                .write(&key, &[])
                .map_err(RepoError::io("write", self.path_of(&key)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::repo::backend::LockGuard;
    use crate::repo::local::LocalBackend;
    use crate::repo::{CheckOptions, PruneOptions, PushOptions, SnapshotId};

    /// A local repository whose writes and removals fail after `left` of
    /// them: a process stopped between any two steps.
    #[derive(Debug)]
    struct Stopping {
        inner: LocalBackend,
        left: Arc<AtomicUsize>,
    }

    impl Stopping {
        // `try_update`, fetch_update's new name, is newer than our
        // rust-version (1.90).
        #[allow(deprecated)]
        fn step(&self) -> io::Result<()> {
            self.left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .map(|_| ())
                .map_err(|_| io::Error::other("stopped here"))
        }
    }

    impl Backend for Stopping {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn read(&self, key: &str, max: u64) -> io::Result<Vec<u8>> {
            self.inner.read(key, max)
        }
        fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.inner.read_at(key, offset, buf)
        }
        fn write(&self, key: &str, data: &[u8]) -> io::Result<()> {
            self.step()?;
            self.inner.write(key, data)
        }
        fn local_path(&self, key: &str) -> Option<std::path::PathBuf> {
            self.inner.local_path(key)
        }
        fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
            self.inner.list(prefix)
        }
        fn remove(&self, key: &str) -> io::Result<()> {
            self.step()?;
            self.inner.remove(key)
        }
        fn index_dir(&self) -> std::path::PathBuf {
            self.inner.index_dir()
        }
        fn lock(&self, exclusive: bool, wait: bool) -> io::Result<Box<dyn LockGuard>> {
            self.inner.lock(exclusive, wait)
        }
    }

    const FIRST: &str = "testdata/snapshots/small-v35.db";
    const SECOND: &str = "testdata/snapshots/auth-v35.db";

    fn listed(repo: &Repository) -> Vec<SnapshotId> {
        let snaps = repo.snapshots().expect("snapshots");
        snaps.iter().map(|i| i.id).collect()
    }

    /// The repository reads as sound, with the index as it is and made
    /// again from the objects (as a lost cache of object storage is).
    #[track_caller]
    fn sound(root: &std::path::Path, what: &str) -> Repository {
        let repo = Repository::open_dir(root, None).expect("open");
        for rebuild in [false, true] {
            if rebuild {
                repo.rebuild_index().expect("rebuild");
            }
            let r = repo.check(&CheckOptions::default()).expect("check");
            assert!(r.is_ok(), "{what}: {:?}", r.problems);
        }
        repo
    }

    /// A forget stopped after any number of its steps leaves the snapshot
    /// present or forgotten, never missing; then forget and prune finish.
    #[test]
    fn a_forget_stopped_anywhere_is_never_a_loss() {
        for stop in 0.. {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path().join("repo");
            let repo = Repository::init_dir(&root, None).expect("init");
            let opts = PushOptions::default();
            let a = repo.push(FIRST.as_ref(), &opts).expect("push").info.id;
            let b = repo.push(SECOND.as_ref(), &opts).expect("push").info.id;
            drop(repo);
            let stopping = Stopping {
                inner: LocalBackend::new(&root),
                left: Arc::new(AtomicUsize::new(stop)),
            };
            let stopping = Repository::open(Box::new(stopping), None).expect("open");
            let forget = PruneOptions::default().with_ids([a.to_string()]);
            let done = stopping.forget(&forget).is_ok();
            drop(stopping);
            let repo = sound(&root, &format!("forget stopped after {stop} steps"));
            let ids = listed(&repo);
            assert!(ids.contains(&b));
            if done {
                assert!(!ids.contains(&a));
            } else if ids.contains(&a) {
                repo.forget(&forget).expect("forget again");
            }
            repo.prune(&PruneOptions::default()).expect("prune");
            let r = repo
                .check(&CheckOptions::default().with_read_data(true))
                .expect("check");
            assert!(r.is_ok(), "{:?}", r.problems);
            assert_eq!(listed(&repo), vec![b]);
            if done {
                assert!(stop >= 3, "forget takes three steps");
                break;
            }
        }
    }

    /// A push stopped after any number of its steps leaves nothing that
    /// reads as missing.
    #[test]
    fn a_push_stopped_anywhere_is_never_a_loss() {
        for stop in 0.. {
            let dir = tempfile::tempdir().expect("tempdir");
            let root = dir.path().join("repo");
            Repository::init_dir(&root, None).expect("init");
            let stopping = Stopping {
                inner: LocalBackend::new(&root),
                left: Arc::new(AtomicUsize::new(stop)),
            };
            let stopping = Repository::open(Box::new(stopping), None).expect("open");
            let done = stopping.push(FIRST.as_ref(), &PushOptions::default());
            drop(stopping);
            let repo = sound(&root, &format!("push stopped after {stop} steps"));
            let present = listed(&repo);
            // Prune records what a stopped push left unrecorded.
            repo.prune(&PruneOptions::default()).expect("prune");
            let held = list(repo.backend.as_ref()).expect("list");
            assert!(held.unrecorded.is_empty() && held.missing.is_empty());
            assert_eq!(listed(&repo), present);
            if let Ok(pushed) = done {
                assert_eq!(present, vec![pushed.info.id]);
                break;
            }
        }
    }

    fn id(n: u8) -> [u8; 32] {
        [n; 32]
    }

    /// Every prefix of push's and forget's steps reads as the old state
    /// or the new one, never as a missing snapshot.
    #[test]
    fn every_step_reads_as_present_or_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = LocalBackend::new(dir.path());
        b.create_layout().expect("layout");
        let present = |b: &LocalBackend| {
            let h = list(b).expect("list");
            assert!(h.missing.is_empty(), "{:?}", h.missing);
            h.present.contains_key(&id(1))
        };
        // push: manifest, record.
        assert!(!present(&b));
        b.write(&keys::snapshot(&id(1)), b"m").expect("write");
        assert!(present(&b));
        b.write(&known(&id(1)), b"").expect("write");
        assert!(present(&b));
        // forget: decision, manifest, record.
        b.write(&forgotten(&id(1)), b"").expect("write");
        assert!(!present(&b));
        assert_eq!(list(&b).expect("list").unfinished, vec![id(1)]);
        b.remove(&keys::snapshot(&id(1))).expect("remove");
        assert!(!present(&b));
        b.remove(&known(&id(1))).expect("remove");
        assert!(!present(&b));
        assert!(list(&b).expect("list").unfinished.is_empty());
        // A manifest removed without a forget is missing.
        b.write(&keys::snapshot(&id(2)), b"m").expect("write");
        b.write(&known(&id(2)), b"").expect("write");
        b.remove(&keys::snapshot(&id(2))).expect("remove");
        assert_eq!(list(&b).expect("list").missing, vec![id(2)]);
    }
}
