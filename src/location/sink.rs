//! `snapshot save` into any location: the bytes go to the location (a
//! multipart upload, compressed as the name says) as they arrive, and to
//! an uncompressed local spool file that save's structural check reads
//! (the check needs random access to the bbolt pages, which a stream does
//! not give). The object is completed only after the check passed; the
//! spool is an unnamed temporary file, gone when closed or killed.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::error::LocationError;
use super::options::LocationOptions;
use super::parse::Location;
use super::timestamp::expand_time;
use super::write::LocationWriter;
use crate::sink::{SinkError, SnapshotSink};

/// A [`SnapshotSink`] for a [`Location`] other than a plain local file.
#[derive(Debug)]
pub struct LocationSink {
    writer: LocationWriter,
    /// Written unbuffered (save hands over 32 KiB chunks), so that it is
    /// complete when save reads it, which may be before `sync`.
    spool: File,
    spool_path: PathBuf,
    /// The directory the spool is in, for messages (its own name,
    /// `/proc/self/fd/N`, says nothing to an operator).
    spool_dir: PathBuf,
    /// Whether that directory is `$TMPDIR` (not one set in the options).
    spool_in_tmpdir: bool,
    shown: PathBuf,
}

fn sink_error(op: &'static str, shown: &Path, e: LocationError) -> SinkError {
    SinkError::new(
        op,
        shown,
        std::io::Error::other(strip(shown, &e.to_string())),
    )
}

/// The error text without the leading `LOCATION: ` (the save's message
/// names the location already).
fn strip(shown: &Path, text: &str) -> String {
    let prefix = format!("{}: ", shown.display());
    text.strip_prefix(&prefix).unwrap_or(text).to_string()
}

impl LocationSink {
    /// Starts the upload (credentials and the bucket are checked now) and
    /// creates the spool in the location's temporary directory.
    pub fn create(loc: &Location) -> Result<LocationSink, SinkError> {
        let shown = PathBuf::from(loc.as_str());
        let dir = loc.options().temp_dir();
        let in_tmpdir = loc.options().temp_dir.is_none();
        // Unnamed, so that nothing is left even if the process is killed;
        // save's check opens it again through /proc.
        let spool = tempfile::tempfile_in(&dir)
            .map_err(|e| SinkError::new(spool_op(in_tmpdir, "create"), &dir, e))?;
        let spool_path = PathBuf::from(format!("/proc/self/fd/{}", spool.as_raw_fd()));
        let writer = loc.create().map_err(|e| sink_error("start", &shown, e))?;
        Ok(LocationSink {
            writer,
            spool,
            spool_path,
            spool_dir: dir,
            spool_in_tmpdir: in_tmpdir,
            shown,
        })
    }
}

impl SnapshotSink for LocationSink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), SinkError> {
        (&self.spool).write_all(bytes).map_err(|e| {
            SinkError::new(spool_op(self.spool_in_tmpdir, "write"), &self.spool_dir, e)
        })?;
        self.writer
            .write_all(bytes)
            .map_err(|e| sink_error("write", &self.shown, e))
    }

    fn staged_path(&self) -> Option<&Path> {
        Some(&self.spool_path)
    }

    fn sync(&mut self) -> Result<(), SinkError> {
        // The spool needs no fsync: it is only read back, then removed.
        self.writer
            .finish()
            .map_err(|e| sink_error("finish", &self.shown, e))
    }

    fn publish(self: Box<Self>) -> Result<String, SinkError> {
        let LocationSink { writer, shown, .. } = *self;
        writer
            .publish()
            .map_err(|e| sink_error("publish", &shown, e))
    }

    fn discard(self: Box<Self>) -> String {
        self.writer.discard()
    }
}

/// What is done to the spool, and where, for messages: `write the spool
/// ... in $TMPDIR` followed by the directory. The spool is the
/// uncompressed local copy that is checked before the upload completes,
/// as big as the snapshot.
fn spool_op(in_tmpdir: bool, op: &str) -> &'static str {
    match (op, in_tmpdir) {
        ("create", true) => {
            "create the spool (the local copy checked before the upload completes) in $TMPDIR"
        }
        ("create", false) => {
            "create the spool (the local copy checked before the upload completes) in"
        }
        (_, true) => {
            "write the spool (the local copy checked before the upload completes, as big as the snapshot) in $TMPDIR"
        }
        (_, false) => {
            "write the spool (the local copy checked before the upload completes, as big as the snapshot) in"
        }
    }
}

/// Where a save goes: `path` with `{time}` expanded, and its location when
/// it is not a plain local file (a URL, or a compressed name).
pub(crate) fn destination(
    path: &Path,
    opts: &LocationOptions,
) -> Result<(PathBuf, Option<Location>), LocationError> {
    let Some(text) = path.to_str() else {
        // Not UTF-8: a plain file name, with no placeholder we could see.
        return Ok((path.to_path_buf(), None));
    };
    let text = expand_time(text, std::time::SystemTime::now());
    let loc = Location::parse_with(&text, opts)?;
    let plain = match loc.local_path() {
        Some(p) if loc.is_plain_file() => Some(p.to_path_buf()),
        _ => None,
    };
    Ok(match plain {
        Some(p) => (p, None),
        None => (PathBuf::from(&text), Some(loc)),
    })
}
