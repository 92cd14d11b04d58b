//! A repository in a local directory.
//!
//! Objects are files under the directory; each is written to `tmp/` under
//! a name unique to this process, fsynced, renamed into place and its
//! directory fsynced, so it appears complete or not at all. Temporary files
//! of processes that no longer exist are removed when a repository is
//! opened for writing. The lock is an `flock` on the file `lock`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::backend::{Backend, LockGuard};
use crate::atomic_file::{PartFile, sync_dir};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A repository directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
}

fn invalid(key: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid object key {key:?}"),
    )
}

impl LocalBackend {
    /// The repository in `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { root: root.into() }
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        if super::backend::keys::valid(key) {
            Ok(self.root.join(key))
        } else {
            Err(invalid(key))
        }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Creates `dir` and the missing directories above it up to the root
    /// (a delta's `deltas/<base>/` may be the first of both), each made
    /// durable in its parent before anything is written into it.
    fn make_dirs(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() || dir == self.root {
            return Ok(());
        }
        let parent = dir.parent().unwrap_or(&self.root);
        if parent.starts_with(&self.root) {
            self.make_dirs(parent)?;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => sync_dir(parent),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates the directory layout (for `init`).
    pub(crate) fn create_layout(&self) -> io::Result<()> {
        for d in ["", "tmp", "packs", "lists", "snapshots"] {
            let p = self.root.join(d);
            match std::fs::create_dir(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
                Err(e) => return Err(e),
            }
        }
        sync_dir(&self.root)?;
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(())
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, key: &str, max: u64) -> io::Result<Vec<u8>> {
        let f = File::open(self.path(key)?)?;
        let size = f.metadata()?.len();
        if size > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{size} bytes, more than the {max} such an object can hold"),
            ));
        }
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        // `take` bounds the read even if the file grows after the stat.
        f.take(max.saturating_add(1)).read_to_end(&mut out)?;
        if out.len() as u64 > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("grew past the {max} bytes such an object can hold while read"),
            ));
        }
        Ok(out)
    }

    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let f = File::open(self.path(key)?)?;
        let size = f.metadata()?.len();
        let len = buf.len();
        if offset.checked_add(len as u64).is_none_or(|end| end > size) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{len} bytes at {offset} are past the end ({size} bytes)"),
            ));
        }
        f.read_exact_at(buf, offset)
    }

    fn write(&self, key: &str, data: &[u8]) -> io::Result<()> {
        let dst = self.path(key)?;
        let dir = dst.parent().ok_or_else(|| invalid(key))?.to_path_buf();
        self.make_dirs(&dir)?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let base = key.rsplit('/').next().unwrap_or("object");
        let tmp = self
            .tmp_dir()
            .join(format!("{base}.{}.{n}.tmp", std::process::id()));
        // The one atomic-file sequence (crate::atomic_file): registered
        // for a signal's cleanup before it exists, fsynced, renamed under
        // the cleanup lock, the directory fsynced; removed if any step
        // fails, so a signal or error removes it, never the object.
        let mut f = PartFile::create_new_at(&tmp, &dst).map_err(|f| f.source)?;
        f.write_all(data)?;
        f.sync().map_err(|f| f.source)?;
        f.publish().map_err(|f| f.source)?;
        super::backend::crash_point();
        Ok(())
    }

    fn write_file(&self, key: &str, tmp: &Path) -> io::Result<()> {
        let dst = self.path(key)?;
        let dir = dst.parent().ok_or_else(|| invalid(key))?.to_path_buf();
        self.make_dirs(&dir)?;
        // `tmp` is in this repository's `tmp/` (the index dir is the
        // root): renamed into place once durable, as `write` publishes.
        crate::atomic_file::publish_file(tmp, &dst)?;
        super::backend::crash_point();
        Ok(())
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        // Walks the directory the prefix names (two levels for packs).
        let dir_key = prefix.trim_end_matches('/');
        let dir = self.path(dir_key)?;
        let mut out = Vec::new();
        let mut stack = vec![(dir, format!("{dir_key}/"))];
        while let Some((d, key_prefix)) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for e in entries {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                let ft = e.file_type()?;
                if ft.is_dir() {
                    stack.push((e.path(), format!("{key_prefix}{name}/")));
                } else if ft.is_file() {
                    out.push((format!("{key_prefix}{name}"), e.metadata()?.len()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn remove(&self, key: &str) -> io::Result<()> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                // Durable before anything that relies on the object being
                // gone (a removal is a step the crash tests stop after).
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
                super::backend::crash_point();
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn index_dir(&self) -> PathBuf {
        self.root.clone()
    }

    fn lock(&self, exclusive: bool, wait: bool) -> io::Result<Box<dyn LockGuard>> {
        let path = self.root.join("lock");
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)?;
        let taken = match (exclusive, wait) {
            (true, true) => f.lock().map(|()| true),
            (false, true) => f.lock_shared().map(|()| true),
            (true, false) => match f.try_lock() {
                Ok(()) => Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            },
            (false, false) => match f.try_lock_shared() {
                Ok(()) => Ok(true),
                Err(std::fs::TryLockError::WouldBlock) => Ok(false),
                Err(std::fs::TryLockError::Error(e)) => Err(e),
            },
        }?;
        if !taken {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the repository is locked by another etcdsnap (a push, prune or check)",
            ));
        }
        // Leave who holds an exclusive lock in the file, for whoever looks.
        if exclusive {
            let _ = f.set_len(0);
            let _ = f.seek(SeekFrom::Start(0));
            let _ = writeln!(f, "pid {}", std::process::id());
        }
        Ok(Box::new(f))
    }

    fn lock_waiting(
        &self,
        exclusive: bool,
        notice: &dyn Fn(&str),
    ) -> io::Result<Box<dyn LockGuard>> {
        // Polled rather than blocked in flock, so that the wait can be
        // explained while it lasts.
        let started = std::time::Instant::now();
        let mut told: Option<std::time::Instant> = None;
        loop {
            match self.lock(exclusive, false) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            if told.is_none_or(|t| t.elapsed() >= super::backend::NOTICE_EVERY) {
                told = Some(std::time::Instant::now());
                notice(&format!(
                    "waiting for the lock of {} ({}), held by {}{}; the kernel releases it when that process ends",
                    self.location(),
                    self.root.join("lock").display(),
                    self.holder().unwrap_or_else(|| "another etcdsnap".into()),
                    if started.elapsed().as_secs() > 0 {
                        format!(", waited {}", super::backend::ago(started.elapsed()))
                    } else {
                        String::new()
                    }
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    fn unlock(&self, all: bool) -> io::Result<super::backend::UnlockReport> {
        let held = match self.lock(true, false) {
            Ok(g) => {
                drop(g);
                Vec::new()
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => vec![format!(
                "{}: held by {}",
                self.root.join("lock").display(),
                self.holder().unwrap_or_else(|| "another etcdsnap".into())
            )],
            Err(e) => return Err(e),
        };
        let why = if all && !held.is_empty() {
            "a local repository is locked with flock, which no other process can break: stop the holder; the kernel releases its lock when it ends"
        } else {
            "a local repository is locked with flock, which the kernel releases when its holder ends: no lock of it can be stale"
        };
        Ok(super::backend::UnlockReport::noted(why, held))
    }
}

impl LocalBackend {
    /// Who holds the lock while it is held: an exclusive holder left its
    /// PID in the file (only read when a shared lock cannot be had, so the
    /// PID is not a past holder's); shared holders are pushes and readers.
    fn holder(&self) -> Option<String> {
        match self.lock(false, false) {
            Ok(_) => Some("running pushes or readers (shared)".into()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let text = std::fs::read_to_string(self.root.join("lock")).ok()?;
                let pid = text.trim().strip_prefix("pid ")?.parse::<u32>().ok()?;
                Some(format!("pid {pid} (exclusively: a prune)"))
            }
            Err(_) => None,
        }
    }
}

/// Removes the temporary files in `dir` (a repository's `tmp/`, beside
/// its index: the directory itself, or this machine's cache of one in
/// object storage) left by processes that no longer run: they are named
/// `NAME.PID.N.tmp`.
pub(crate) fn remove_stale_tmp(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name.split('.').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid
            .is_some_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_list_remove() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = LocalBackend::new(dir.path().join("repo"));
        b.create_layout().expect("layout");
        b.write("packs/ab/abcd", b"pack").expect("write");
        b.write("lists/ff", b"list").expect("write");
        b.write("deltas/ab/cd", b"delta").expect("two new levels");
        assert_eq!(b.read("deltas/ab/cd", 5).expect("read"), b"delta");
        b.remove("deltas/ab/cd").expect("remove");
        assert_eq!(b.read("packs/ab/abcd", 4).expect("read"), b"pack");
        assert!(b.read("packs/ab/abcd", 3).is_err(), "longer than the limit");
        let mut two = [0u8; 2];
        b.read_at("packs/ab/abcd", 1, &mut two).expect("read_at");
        assert_eq!(&two, b"ac");
        assert!(b.read_at("packs/ab/abcd", 3, &mut two).is_err());
        assert_eq!(
            b.list("packs/").expect("list"),
            vec![("packs/ab/abcd".to_string(), 4)]
        );
        b.remove("packs/ab/abcd").expect("remove");
        b.remove("packs/ab/abcd").expect("remove twice");
        assert!(b.list("packs/").expect("list").is_empty());
        assert!(b.read("../etc/passwd", 1 << 20).is_err());
        assert!(b.write("a/../b", b"x").is_err());
        assert_eq!(
            std::fs::read_dir(dir.path().join("repo/tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }

    #[test]
    fn exclusive_lock_excludes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let b = LocalBackend::new(dir.path());
        let shared = b.lock(false, false).expect("shared");
        let shared2 = b.lock(false, false).expect("two shared");
        assert!(b.lock(true, false).is_err());
        drop((shared, shared2));
        let ex = b.lock(true, false).expect("exclusive");
        assert!(b.lock(false, false).is_err());
        drop(ex);
    }
}
