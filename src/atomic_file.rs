//! Replacing a file so that a crash at any instruction leaves the old
//! contents or the new ones: the bytes go to `FILE.part` (mode 0600)
//! beside the target, are fsynced, renamed over `FILE`, and the directory
//! is fsynced so the new name is durable too. The one copy of that
//! sequence: the save sink, local locations, the backup repository in a
//! local directory and restore's staged directories use it.
//!
//! The `.part` is registered with [`crate::cleanup`] before it is created
//! and the rename runs under the cleanup lock, so a signal's cleanup
//! removes the `.part` before the rename, or nothing after it.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every file staged here (the snapshot may hold secrets).
pub(crate) const FILE_MODE: u32 = 0o600;

/// A failed step: what was being done (`create`, `chmod`, `fsync`,
/// `rename`), on which path, and the OS error. Each caller turns it into
/// its own error type.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) op: &'static str,
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

impl Failure {
    fn at(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Failure {
        let path = path.to_path_buf();
        move |source| Failure { op, path, source }
    }
}

/// `FILE.part`.
pub(crate) fn part_path(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// The directory `path` is (or will be) created in: "." for a bare name.
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `fsync` of a directory, so that entries created, renamed or removed in
/// it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all())
}

/// Publishes `file`, complete and closed by its writer, as `target`: the
/// bytes fsynced, the rename, the directory fsynced. For a file staged
/// elsewhere than beside its target under a name of its own (the backup
/// repository's `tmp/`: a spooled pack, a sealed segment), whose owner
/// removes it if it is still there afterwards. A signal's cleanup removes
/// `file` before the rename, which then fails, or finds nothing after it.
#[cfg(feature = "repo")]
pub(crate) fn publish_file(file: &Path, target: &Path) -> io::Result<()> {
    File::open(file)?.sync_all()?;
    std::fs::rename(file, target)?;
    sync_dir(&parent_dir(target))
}

/// `FILE.part` being written; [`PartFile::publish`] renames it to `FILE`.
/// Dropped before that, it removes the `.part`.
#[derive(Debug)]
pub(crate) struct PartFile {
    target: PathBuf,
    part: PathBuf,
    file: File,
    /// Published, or removed by [`PartFile::remove`]: nothing to clean.
    done: bool,
    /// `FILE.part` for [`crate::cleanup`] (a signal's cleanup).
    entry: crate::cleanup::Entry,
}

impl PartFile {
    /// Creates (or truncates, as etcdctl does) `FILE.part` with mode 0600.
    pub(crate) fn create(target: &Path) -> Result<PartFile, Failure> {
        let part = part_path(target);
        let entry = crate::cleanup::Entry::new(&part);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&part)
            .map_err(Failure::at("create", &part))?;
        // A .part left by an earlier run keeps its old mode on truncation.
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
            .map_err(Failure::at("chmod", &part))?;
        Ok(PartFile {
            target: target.to_path_buf(),
            part,
            file,
            done: false,
            entry,
        })
    }

    /// Creates `part`, a new file (mode 0600) that
    /// [`publish`](PartFile::publish) renames to `target`: for a caller
    /// that stages elsewhere than beside the target under a name unique to
    /// it (the backup repository's `tmp/`, which it sweeps of dead
    /// processes' files). An existing `part` is an error, not truncated.
    #[cfg(feature = "repo")]
    pub(crate) fn create_new_at(part: &Path, target: &Path) -> Result<PartFile, Failure> {
        let entry = crate::cleanup::Entry::new(part);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(part)
            .map_err(Failure::at("create", part))?;
        Ok(PartFile {
            target: target.to_path_buf(),
            part: part.to_path_buf(),
            file,
            done: false,
            entry,
        })
    }

    /// The open `.part`.
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// `FILE.part`.
    pub(crate) fn part(&self) -> &Path {
        &self.part
    }

    /// `FILE`.
    pub(crate) fn target(&self) -> &Path {
        &self.target
    }

    /// Makes everything written durable (still unpublished).
    pub(crate) fn sync(&self) -> Result<(), Failure> {
        self.file
            .sync_all()
            .map_err(Failure::at("fsync", &self.part))
    }

    /// Renames `FILE.part` over `FILE` and fsyncs the directory. The
    /// bytes must have been synced ([`PartFile::sync`]) first.
    pub(crate) fn publish(&mut self) -> Result<(), Failure> {
        // Under the cleanup lock: a signal's cleanup removes FILE.part
        // before, or nothing after.
        self.entry
            .with(|paths| {
                std::fs::rename(&self.part, &self.target)?;
                paths.clear();
                Ok(())
            })
            .map_err(Failure::at("rename", &self.part))?;
        self.done = true;
        let dir = parent_dir(&self.target);
        sync_dir(&dir).map_err(Failure::at("fsync", &dir))
    }

    /// Removes the `.part` now (the caller reports how that went).
    pub(crate) fn remove(&mut self) -> io::Result<()> {
        self.done = true;
        std::fs::remove_file(&self.part)
    }
}

impl io::Write for PartFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        (&self.file).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

#[cfg(test)]
mod tests {
    // Creating, writing, publishing and dropping are FileSink's tests
    // (src/sink.rs); location_local covers the location writer.
    use super::*;

    #[test]
    fn a_failed_rename_names_the_part() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("d");
        std::fs::create_dir(&target).expect("mkdir");
        std::fs::write(target.join("x"), b"x").expect("fill");
        let mut p = PartFile::create(&target).expect("create");
        let e = p.publish().expect_err("a file cannot replace a directory");
        assert_eq!((e.op, e.path), ("rename", part_path(&target)));
        drop(p);
        assert!(!part_path(&target).exists());
    }

    #[test]
    fn bare_names_live_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("db")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("a/db")), PathBuf::from("a"));
    }
}
