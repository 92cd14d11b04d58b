//! Atomic creation of directories: everything is built under a temporary
//! name, fsynced, and renamed into place only when complete. A [`Staged`]
//! dir that is dropped before [`Staged::publish`] is removed, so a failed
//! restore leaves nothing behind.
//!
//! A target that does not exist is built as a sibling and renamed into
//! place. A target that is an existing empty directory (a mount point, a
//! symlink to an empty directory, a directory made by an operator with its
//! own mode and owner) is kept: the contents are built in a temporary
//! directory *inside* it, on its file system, and each entry is renamed
//! into it; the directory itself is never replaced.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::RestoreError;
use crate::atomic_file::parent_dir;
use crate::cleanup::Entry;

/// Mode of every directory a restore creates (etcd's `PrivateDirMode`).
pub const DIR_MODE: u32 = 0o700;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A directory being built under a temporary name next to (or inside) its
/// final place.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    /// Built inside an existing target: publishing moves the entries.
    inside: bool,
    published: bool,
    /// `tmp` (then what was published from it) for [`crate::cleanup`].
    entry: Option<Entry>,
}

/// Creates `path` with mode 0700.
pub fn mkdir(path: &Path) -> Result<(), RestoreError> {
    DirBuilder::new()
        .mode(DIR_MODE)
        .create(path)
        .map_err(RestoreError::io("mkdir", path))
}

/// `fsync` of a directory, so that entries created in it are durable.
pub fn sync_dir(path: &Path) -> Result<(), RestoreError> {
    crate::atomic_file::sync_dir(path).map_err(RestoreError::io("fsync", path))
}

impl Staged {
    /// Creates an empty temporary directory next to `target`. The parent of
    /// `target` must exist.
    pub fn new(target: &Path) -> Result<Staged, RestoreError> {
        let parent = parent_dir(target);
        if !parent.is_dir() {
            return Err(RestoreError::MissingParent {
                parent,
                path: target.to_path_buf(),
            });
        }
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "restore".into());
        remove_stale(&parent, &base);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = parent.join(format!(".{base}.etcdsnap-{}-{n}.tmp", std::process::id()));
        let entry = Entry::new(&tmp);
        mkdir(&tmp)?;
        Ok(Staged {
            tmp,
            target: target.to_path_buf(),
            inside: false,
            published: false,
            entry: Some(entry),
        })
    }

    /// Creates an empty temporary directory inside `target`, an existing
    /// (empty) directory that is to be kept as it is.
    pub fn inside(target: &Path) -> Result<Staged, RestoreError> {
        remove_stale(target, "");
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = target.join(format!("..etcdsnap-{}-{n}.tmp", std::process::id()));
        let entry = Entry::new(&tmp);
        mkdir(&tmp)?;
        Ok(Staged {
            tmp,
            target: target.to_path_buf(),
            inside: true,
            published: false,
            entry: Some(entry),
        })
    }

    /// Where to build the contents.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The final name.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Renames the directory into place (replacing nothing but an empty
    /// directory) and fsyncs the parent; for a target that existed, renames
    /// each staged entry into it instead. `exists` builds the error for a
    /// target that appeared (or filled up) meanwhile.
    pub fn publish(
        mut self,
        exists: impl FnOnce() -> RestoreError,
    ) -> Result<Published, RestoreError> {
        sync_dir(&self.tmp)?;
        if self.inside {
            return self.publish_inside(exists);
        }
        let entry = self.entry.take();
        let renamed = match &entry {
            Some(e) => e.with(|paths| {
                let r = std::fs::rename(&self.tmp, &self.target);
                if r.is_ok() {
                    *paths = vec![self.target.clone()];
                }
                r
            }),
            None => std::fs::rename(&self.tmp, &self.target),
        };
        match renamed {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists
                ) =>
            {
                self.entry = entry;
                return Err(exists());
            }
            Err(e) => {
                self.entry = entry;
                return Err(RestoreError::io("rename", &self.tmp)(e));
            }
        }
        self.published = true;
        // From here the guard below removes the target on failure.
        let published = Published {
            paths: vec![self.target.clone()],
            keep: false,
            entry,
        };
        sync_dir(&parent_dir(&self.target))?;
        Ok(published)
    }

    fn publish_inside(
        mut self,
        exists: impl FnOnce() -> RestoreError,
    ) -> Result<Published, RestoreError> {
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&self.tmp)
            .and_then(|d| d.map(|e| e.map(|e| e.file_name())).collect())
            .map_err(RestoreError::io("read", &self.tmp))?;
        names.sort();
        let entry = self.entry.take();
        let mut moved = Vec::new();
        // The moves, and the registration of where things went, happen at
        // once for a signal's cleanup.
        let result = match &entry {
            Some(e) => e.with(|paths| {
                let r = move_entries(&self.tmp, &self.target, &names, &mut moved);
                paths.extend(moved.iter().cloned());
                if r.is_ok() {
                    paths.retain(|p| p != &self.tmp);
                }
                r
            }),
            None => move_entries(&self.tmp, &self.target, &names, &mut moved),
        };
        // Entries moved so far are removed again if a later one fails
        // (this guard is dropped before `self`, which removes the rest).
        let mut published = Published {
            paths: moved,
            keep: false,
            entry: None,
        };
        match result {
            Ok(()) => published.entry = entry,
            Err(e) => {
                self.entry = entry;
                return Err(match e {
                    MoveError::Exists => exists(),
                    MoveError::Io(e) => e,
                });
            }
        }
        self.published = true;
        sync_dir(&self.target)?;
        Ok(published)
    }
}

/// Why moving staged entries into an existing target stopped.
enum MoveError {
    /// Something of that name appeared in the target.
    Exists,
    /// A rename or the removal of the emptied staged dir failed.
    Io(RestoreError),
}

/// Renames each of `names` from `tmp` into `target` (recording each in
/// `moved`), then removes the emptied `tmp`.
fn move_entries(
    tmp: &Path,
    target: &Path,
    names: &[std::ffi::OsString],
    moved: &mut Vec<PathBuf>,
) -> Result<(), MoveError> {
    for name in names {
        let dst = target.join(name);
        if std::fs::symlink_metadata(&dst).is_ok() {
            return Err(MoveError::Exists);
        }
        std::fs::rename(tmp.join(name), &dst)
            .map_err(|e| MoveError::Io(RestoreError::io("rename", tmp.join(name))(e)))?;
        moved.push(dst);
    }
    std::fs::remove_dir(tmp).map_err(|e| MoveError::Io(RestoreError::io("remove", tmp)(e)))
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// Removes temporary dirs for `base` left by restores that were killed
/// (their process no longer exists), so a retry starts clean (`base` ""
/// for those staged inside a target).
pub fn remove_stale(parent: &Path, base: &str) {
    let prefix = format!(".{base}.etcdsnap-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".tmp"))
        else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let alive = pid
            .is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Directories renamed into place by a restore that is not finished yet:
/// removed on drop unless [`Published::keep`] is called.
#[derive(Debug)]
pub struct Published {
    paths: Vec<PathBuf>,
    keep: bool,
    /// The same paths for [`crate::cleanup`], forgotten once kept.
    entry: Option<Entry>,
}

impl Published {
    /// The restore is complete: leave the directories in place.
    pub fn keep(mut self) {
        self.keep = true;
        self.entry = None;
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        if !self.keep {
            for p in self.paths.iter().rev() {
                let _ = std::fs::remove_dir_all(p);
                let _ = sync_dir(&parent_dir(p));
            }
        }
    }
}
