//! Where a received snapshot goes. A [`SnapshotSink`] takes the bytes as
//! they arrive, makes them durable, and publishes them under their final
//! name only when the save has checked them; dropped before that, it
//! removes everything it wrote. [`FileSink`] is the local file
//! (`FILE.part`, then `FILE`); other destinations (object storage) fit
//! behind the same trait.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::atomic_file::{Failure, PartFile};

/// Bytes between requests to start writing back (the disk works while
/// the stream goes on; dirty pages do not pile up for a final fsync).
const WRITEBACK_EVERY: u64 = 32 << 20;

/// Why a sink operation failed: what was being done, on what, and the OS
/// error.
#[derive(Debug)]
#[non_exhaustive]
pub struct SinkError {
    /// What was being done (`create`, `write`, `fsync`, `rename`).
    pub op: &'static str,
    /// The file (or object) concerned.
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

impl SinkError {
    /// `op` on `path` failed with `source`.
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> SinkError {
        SinkError {
            op,
            path: path.into(),
            source,
        }
    }
}

/// A destination for a snapshot being saved.
pub trait SnapshotSink: Send {
    /// Appends the next bytes of the snapshot.
    fn write(&mut self, bytes: &[u8]) -> Result<(), SinkError>;
    /// Appends several chunks in order (one system call for many chunks
    /// where the sink can).
    fn write_chunks(&mut self, chunks: &[bytes::Bytes]) -> Result<(), SinkError> {
        chunks.iter().try_for_each(|c| self.write(c))
    }
    /// A local file holding everything written so far, for the checks
    /// that run before publishing (`None` if the sink keeps no local
    /// copy).
    fn staged_path(&self) -> Option<&Path>;
    /// Makes everything written durable (still unpublished).
    fn sync(&mut self) -> Result<(), SinkError>;
    /// Makes the snapshot visible under its final name (replacing an
    /// older one, as etcdctl does) and returns that name.
    fn publish(self: Box<Self>) -> Result<String, SinkError>;
    /// Removes everything written, as dropping the sink does, and says
    /// what that was (`removed FILE.part`), for the message of an
    /// interrupted save; empty when there is nothing to say.
    fn discard(self: Box<Self>) -> String {
        drop(self);
        String::new()
    }
}

/// `FILE.part` (mode 0600), renamed to `FILE` when published; the
/// directory is fsynced after the rename so the name is durable too.
#[derive(Debug)]
pub struct FileSink {
    part: PartFile,
    written: u64,
    flushed: u64,
    flusher: Option<Flusher>,
}

impl From<Failure> for SinkError {
    fn from(f: Failure) -> SinkError {
        SinkError::new(f.op, f.path, f.source)
    }
}

impl FileSink {
    /// Creates (or truncates, as etcdctl does) `FILE.part` with mode 0600.
    pub fn create(target: &Path) -> Result<FileSink, SinkError> {
        Ok(FileSink {
            part: PartFile::create(target)?,
            written: 0,
            flushed: 0,
            flusher: None,
        })
    }

    fn err(&self, op: &'static str, source: std::io::Error) -> SinkError {
        SinkError::new(op, self.part.part(), source)
    }

    /// Asks the flusher to write back what is dirty, without waiting for
    /// it; skipped while a flush is still running.
    fn start_writeback(&mut self) {
        if self.flusher.is_none() {
            self.flusher = self.part.file().try_clone().ok().map(Flusher::spawn);
        }
        if let Some(f) = &self.flusher {
            let _ = f.wake.try_send(());
        }
        self.flushed = self.written;
    }
}

/// A thread that `fdatasync`s the file whenever woken, so the disk writes
/// while the stream goes on and the final fsync finds little to do.
/// Its errors are not reported: the final fsync reports them.
#[derive(Debug)]
struct Flusher {
    wake: std::sync::mpsc::SyncSender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn spawn(file: File) -> Flusher {
        let (wake, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("etcdsnap-flush".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    let _ = file.sync_data();
                }
            })
            .ok();
        Flusher { wake, thread }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the thread after its current flush.
        let (dead, _) = std::sync::mpsc::sync_channel(1);
        drop(std::mem::replace(&mut self.wake, dead));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl SnapshotSink for FileSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        self.part
            .write_all(bytes)
            .map_err(|e| self.err("write", e))?;
        self.written = self.written.saturating_add(bytes.len() as u64);
        if self.written - self.flushed >= WRITEBACK_EVERY {
            self.start_writeback();
        }
        Ok(())
    }

    fn write_chunks(&mut self, chunks: &[bytes::Bytes]) -> Result<(), SinkError> {
        let total: usize = chunks.iter().map(|c| c.len()).sum();
        let mut done = 0usize;
        while done < total {
            // The chunks not yet written in full, the first one cut.
            let mut skip = done;
            let mut slices = Vec::with_capacity(chunks.len());
            for c in chunks {
                if skip >= c.len() {
                    skip -= c.len();
                    continue;
                }
                slices.push(std::io::IoSlice::new(c.get(skip..).unwrap_or_default()));
                skip = 0;
            }
            match self.part.write_vectored(&slices) {
                Ok(0) => {
                    return Err(self.err("write", std::io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => done = done.saturating_add(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err("write", e)),
            }
        }
        self.written = self.written.saturating_add(total as u64);
        if self.written - self.flushed >= WRITEBACK_EVERY {
            self.start_writeback();
        }
        Ok(())
    }

    fn staged_path(&self) -> Option<&Path> {
        Some(self.part.part())
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        self.flusher = None;
        Ok(self.part.sync()?)
    }

    fn publish(mut self: Box<Self>) -> Result<String, SinkError> {
        self.part.publish()?;
        Ok(self.part.target().display().to_string())
    }

    fn discard(mut self: Box<Self>) -> String {
        self.flusher = None;
        self.remove_part()
    }
}

impl FileSink {
    fn remove_part(&mut self) -> String {
        let part = self.part.part().display().to_string();
        match self.part.remove() {
            Ok(()) => format!("removed {part}"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => format!("could not remove {part}: {}", crate::go::errno::text(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::atomic_file::part_path;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn dropped_sink_leaves_nothing_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("snap.db");
        std::fs::write(&target, b"old").expect("old file");
        {
            let mut s = FileSink::create(&target).expect("create");
            s.write(b"new bytes").expect("write");
            let mode = std::fs::metadata(part_path(&target))
                .expect("part exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!part_path(&target).exists());
        assert_eq!(std::fs::read(&target).expect("old"), b"old");
    }

    #[test]
    fn chunks_are_written_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("snap.db");
        let mut s = Box::new(FileSink::create(&target).expect("create"));
        let chunks: Vec<bytes::Bytes> = (0..40u8)
            .map(|i| bytes::Bytes::from(vec![i; 1000 + usize::from(i)]))
            .collect();
        s.write_chunks(&chunks).expect("write");
        s.write_chunks(&[]).expect("nothing");
        s.publish().expect("publish");
        let want: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
        assert_eq!(std::fs::read(&target).expect("read"), want);
    }

    #[test]
    fn published_sink_replaces_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("snap.db");
        std::fs::write(&target, b"old").expect("old file");
        let mut s = Box::new(FileSink::create(&target).expect("create"));
        s.write(b"new").expect("write");
        s.sync().expect("sync");
        assert_eq!(s.publish().expect("publish"), target.display().to_string());
        assert_eq!(std::fs::read(&target).expect("new"), b"new");
        assert!(!part_path(&target).exists());
    }

    #[test]
    fn stale_part_is_truncated_and_made_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("s.db");
        std::fs::write(part_path(&target), b"stale stale stale").expect("stale");
        std::fs::set_permissions(part_path(&target), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let mut s = FileSink::create(&target).expect("create");
        s.write(b"x").expect("write");
        let md = std::fs::metadata(part_path(&target)).expect("part");
        assert_eq!((md.len(), md.permissions().mode() & 0o777), (1, 0o600));
    }
}
