//! Writing a location: compress (by the name) and store as the bytes
//! arrive, and make the result visible only when told to. A local file is
//! written as `FILE.part` and renamed; an object is a multipart upload,
//! completed on publish and aborted if the writer is dropped first.

#[cfg(feature = "remote")]
use futures_util::StreamExt;
use std::io::{self, BufWriter, Write};

use crate::atomic_file::{Failure, PartFile};

use super::compression::Encoder;
use super::error::LocationError;
#[cfg(feature = "remote")]
use super::error::one_line;
use super::parse::{Location, Target};
#[cfg(feature = "remote")]
use super::store::cause;
#[cfg(feature = "remote")]
use super::upload::Upload;

/// Where the (compressed) bytes go: `FILE.part` (mode 0600), renamed to
/// `FILE` on publish and removed if dropped before, or an upload.
enum Output {
    Local(BufWriter<PartFile>),
    #[cfg(feature = "remote")]
    Remote(Upload),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Local(l) => l.write(buf),
            #[cfg(feature = "remote")]
            Output::Remote(u) => u.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Local(l) => l.flush(),
            #[cfg(feature = "remote")]
            Output::Remote(u) => u.flush(),
        }
    }
}

fn local_error(f: Failure) -> LocationError {
    LocationError::io(&f.path.display().to_string(), f.op, f.source)
}

/// A snapshot being written to a [`Location`]: compressed as its name
/// says, uploaded in parts as it arrives, visible only after
/// [`publish`](LocationWriter::publish). Dropped before that, it leaves
/// nothing: the multipart upload is aborted, the `.part` file removed.
///
/// Writing, finishing and publishing block the calling thread while parts
/// upload. Dropped inside a tokio runtime, the writer does not wait for
/// the abort, which then runs in the background (see
/// [blocking calls and async code](crate#blocking-calls-and-async-code)).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let dest = dir.path().join("snap.db.zst");
/// let loc = etcdsnap::Location::parse(dest.to_str().unwrap())?;
/// let mut w = loc.create()?;
/// w.write_all(&std::fs::read("testdata/snapshots/small-v35.db")?)?;
/// w.finish()?;
/// assert!(!dest.exists()); // not published yet
/// w.publish()?;
/// assert!(dest.exists());
/// # Ok(()) }
/// ```
pub struct LocationWriter {
    location: Location,
    encoder: Option<Encoder<Output>>,
    finished: Option<Output>,
    written: u64,
}

impl std::fmt::Debug for LocationWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocationWriter")
            .field("location", &self.location.as_str())
            .field("written", &self.written)
            .finish()
    }
}

impl Location {
    /// Starts writing a snapshot here (see [`LocationWriter`]). For an
    /// object store this starts the multipart upload, so wrong
    /// credentials or a missing bucket show up now (blocking the calling
    /// thread until the server answers).
    pub fn create(&self) -> Result<LocationWriter, LocationError> {
        let output = match self.target() {
            Target::Local(p) => Output::Local(BufWriter::with_capacity(
                1 << 20,
                PartFile::create(p).map_err(local_error)?,
            )),
            #[cfg(feature = "remote")]
            Target::Remote(r) => {
                // Not every server refuses to start an upload into a missing
                // bucket; the first page of a listing says so at once (only
                // the first: a bucket may hold any number of objects). Other
                // listing errors are ignored: backup credentials may allow
                // writing only.
                if let Ok(Some(Err(e))) = r.block_on(async { r.store.list(None).next().await })
                    && cause(&e).contains("NoSuchBucket")
                {
                    return Err(LocationError::not_found(self.as_str(), "NoSuchBucket"));
                }
                let o = self.options();
                let up = Upload::start(r.clone(), o.part_size, o.upload_concurrency)
                    .map_err(|e| self.upload_error(e))?;
                Output::Remote(up)
            }
        };
        let encoder = Encoder::new(self.compression(), output, &self.options().compress)
            .map_err(|e| LocationError::transfer(self.as_str(), "start compressing", e))?;
        Ok(LocationWriter {
            location: self.clone(),
            encoder: Some(encoder),
            finished: None,
            written: 0,
        })
    }

    #[cfg(feature = "remote")]
    fn upload_error(&self, e: super::upload::UploadError) -> LocationError {
        let source = e.source.map(|s| Box::new(s) as super::BoxError);
        if e.cause.contains("NoSuchBucket") {
            let mut err = LocationError::not_found(self.as_str(), &e.cause);
            if let LocationError::NotFound { source: s, .. } = &mut err {
                *s = source;
            }
            return err;
        }
        let refusal = super::store::refusal_in(&e.cause);
        LocationError::failed(self.as_str(), "upload", one_line(&e.cause), refusal, source)
    }
}

impl LocationWriter {
    fn error(&self, e: io::Error) -> LocationError {
        match self.location.local_path() {
            Some(_) => LocationError::io(self.location.as_str(), "write", e),
            #[cfg(feature = "remote")]
            None => {
                // The upload's own failure, with the store's error, when the
                // encoder passed it through; otherwise the text.
                let text = e.to_string();
                let e = match e
                    .into_inner()
                    .map(|i| i.downcast::<super::upload::UploadError>())
                {
                    Some(Ok(u)) => *u,
                    _ => super::upload::UploadError::from(text),
                };
                self.location.upload_error(e)
            }
            #[cfg(not(feature = "remote"))]
            None => LocationError::io(self.location.as_str(), "write", e),
        }
    }

    /// Appends the next bytes of the snapshot (uncompressed).
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), LocationError> {
        let Some(enc) = self.encoder.as_mut() else {
            return Err(LocationError::transfer(
                self.location.as_str(),
                "write",
                "already finished",
            ));
        };
        if let Err(e) = enc.write_all(data) {
            return Err(self.error(e));
        }
        self.written = self.written.saturating_add(data.len() as u64);
        Ok(())
    }

    /// Bytes written so far (uncompressed).
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Bytes stored so far: uploaded parts, for an object (compressed, for
    /// a compressed location); 0 for a local file.
    pub fn stored(&mut self) -> u64 {
        let out = match (&mut self.encoder, &mut self.finished) {
            (Some(e), _) => Some(e.get_mut()),
            (None, Some(o)) => Some(o),
            (None, None) => None,
        };
        match out {
            #[cfg(feature = "remote")]
            Some(Output::Remote(u)) => u.uploaded(),
            _ => 0,
        }
    }

    /// Ends the compressed stream and stores everything: the `.part` file
    /// is fsynced, every part uploaded. Nothing is visible yet.
    pub fn finish(&mut self) -> Result<(), LocationError> {
        let Some(enc) = self.encoder.take() else {
            return Ok(());
        };
        let mut out = match enc.finish() {
            Ok(o) => o,
            Err(e) => return Err(self.error(e)),
        };
        let done = match &mut out {
            Output::Local(l) => match l.flush() {
                Ok(()) => l.get_ref().sync().map_err(local_error),
                Err(e) => Err(LocationError::io(
                    &l.get_ref().part().display().to_string(),
                    "fsync",
                    e,
                )),
            },
            #[cfg(feature = "remote")]
            Output::Remote(u) => u.finish_parts().map_err(|e| self.location.upload_error(e)),
        };
        self.finished = Some(out);
        done
    }

    /// Makes the snapshot visible under its name (replacing an older one)
    /// and returns the location.
    pub fn publish(mut self) -> Result<String, LocationError> {
        self.finish()?;
        let text = self.location.as_str().to_string();
        match self.finished.take() {
            Some(Output::Local(mut l)) => {
                l.get_mut().publish().map_err(|f| match f.op {
                    // The rename is the publishing: named by the location.
                    "rename" => LocationError::io(&text, "rename", f.source),
                    _ => local_error(f),
                })?;
            }
            #[cfg(feature = "remote")]
            Some(Output::Remote(u)) => {
                u.complete().map_err(|e| self.location.upload_error(e))?;
            }
            None => {
                return Err(LocationError::transfer(
                    &text,
                    "publish",
                    "nothing was written",
                ));
            }
        }
        Ok(text)
    }

    /// Drops what was written instead of publishing it, and says what that
    /// was: `removed FILE.part`, or the multipart upload aborted.
    #[cfg(feature = "save")]
    pub(crate) fn discard(mut self) -> String {
        #[cfg(feature = "remote")]
        let text = self.location.as_str().to_string();
        let out = match (&mut self.encoder, &mut self.finished) {
            (Some(e), _) => Some(e.get_mut()),
            (None, Some(o)) => Some(o),
            (None, None) => None,
        };
        match out {
            #[cfg(feature = "remote")]
            Some(Output::Remote(u)) => match u.abort() {
                Ok(()) => format!("aborted the multipart upload to {text}"),
                Err(e) => format!("could not abort the multipart upload to {text}: {e}"),
            },
            Some(Output::Local(l)) => {
                let part = l.get_ref().part().display().to_string();
                match l.get_mut().remove() {
                    Ok(()) => format!("removed {part}"),
                    Err(e) => format!("could not remove {part}: {}", crate::go::errno::text(&e)),
                }
            }
            None => String::new(),
        }
    }

    /// Parts of the multipart upload started so far (0 for a local file).
    pub fn parts(&mut self) -> usize {
        let out = match (&mut self.encoder, &mut self.finished) {
            (Some(e), _) => Some(e.get_mut()),
            (None, Some(o)) => Some(o),
            (None, None) => None,
        };
        match out {
            #[cfg(feature = "remote")]
            Some(Output::Remote(u)) => u.parts(),
            _ => 0,
        }
    }
}
