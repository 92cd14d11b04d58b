//! Reading a location once: its bytes as a blocking stream (a download
//! runs on the store's runtime while the caller decompresses, hashes and
//! writes), and the one-pass copy of the snapshot into a local file.

use std::fs::File;
use std::io::{self, Read};

#[cfg(feature = "remote")]
use bytes::Bytes;
#[cfg(feature = "remote")]
use futures_util::StreamExt;
#[cfg(feature = "remote")]
use object_store::ObjectStoreExt;

use super::error::{LocationError, Refusal, one_line};
use super::parse::{Location, Target};
#[cfg(feature = "remote")]
use super::store::{Remote, cause};
use crate::progress::{Phase, Progress};
use crate::snapshot::stream::{StreamError, Streamed, stream_into};
use crate::snapshot::{Snapshot, SnapshotFile};

/// Chunks of a download buffered ahead of the reader.
#[cfg(feature = "remote")]
const DOWNLOAD_DEPTH: usize = 64;
/// Bytes read between progress reports.
const REPORT_EVERY: u64 = 4 << 20;

/// An error of the source underneath a decoder (network, local read), so
/// that it is not mistaken for a decompression error.
#[derive(Debug)]
struct SourceFailure {
    /// The text printed.
    text: String,
    /// Whether it is a refusal of access or credentials.
    refusal: Option<Refusal>,
    /// The store's or the OS's error.
    source: super::error::BoxError,
}

impl std::fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for SourceFailure {}

#[cfg(feature = "remote")]
fn store_failure(e: object_store::Error) -> io::Error {
    let text = cause(&e);
    io::Error::other(SourceFailure {
        refusal: super::store::refusal(&e, &text),
        text,
        source: Box::new(e),
    })
}

fn io_failure(e: io::Error) -> io::Error {
    io::Error::other(SourceFailure {
        text: crate::go::errno::text(&e),
        refusal: (e.kind() == io::ErrorKind::PermissionDenied).then_some(Refusal::Denied),
        source: Box::new(e),
    })
}

/// The bytes of a download, handed over by the store's runtime.
#[cfg(feature = "remote")]
struct Download {
    rx: tokio::sync::mpsc::Receiver<Result<Bytes, object_store::Error>>,
    cur: Bytes,
    task: tokio::task::JoinHandle<()>,
}

/// Waits for `fut` on the calling thread, parked between wake-ups. Unlike
/// tokio's `blocking_recv`, which panics there, this also works when the
/// caller is itself inside a tokio runtime (an embedder's async code calling
/// this synchronous API); the download runs on the store's own runtime, so
/// waiting here cannot starve it. Tokio's cooperative budget is switched
/// off for the wait: inside a runtime's worker it would otherwise report
/// "not ready" forever once spent, since only the runtime renews it.
#[cfg(feature = "remote")]
fn wait<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(tokio::task::unconstrained(fut));
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[cfg(feature = "remote")]
impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match wait(self.rx.recv()) {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(store_failure(e)),
                None => return Ok(0),
            }
        }
        let n = self.cur.len().min(buf.len());
        let chunk = self.cur.split_to(n);
        buf.get_mut(..n).unwrap_or_default().copy_from_slice(&chunk);
        Ok(n)
    }
}

#[cfg(feature = "remote")]
impl Drop for Download {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts the bytes read from the source (as stored) for progress.
struct Counted<'a, R> {
    inner: R,
    done: u64,
    reported: u64,
    total: u64,
    progress: &'a (dyn Fn(Progress) + Sync),
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(|e| {
            if e.get_ref().is_some_and(|r| r.is::<SourceFailure>()) {
                e
            } else {
                io_failure(e)
            }
        })?;
        self.done = self.done.saturating_add(n as u64);
        if self.done - self.reported >= REPORT_EVERY || (n == 0 && self.done != self.reported) {
            self.reported = self.done;
            (self.progress)(Progress::new(
                Phase::Read,
                self.done,
                self.total.max(self.done),
            ));
        }
        Ok(n)
    }
}

/// Resumptions of a download in a row that bring no byte before it fails.
#[cfg(feature = "remote")]
const MAX_FRUITLESS_RESUMES: u32 = 10;
/// The wait before the first resumption; it doubles up to
/// [`MAX_RESUME_BACKOFF`] while resumptions bring nothing.
#[cfg(feature = "remote")]
const RESUME_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);
#[cfg(feature = "remote")]
const MAX_RESUME_BACKOFF: std::time::Duration = std::time::Duration::from_secs(1);

/// What a read of an object (or of a range of it) needs to go on from a
/// byte offset after its response broke (a connection cut, a read timeout
/// while the consumer was busy with a long fsync): the object's identity
/// as the first response gave it, so that the rest comes from the same
/// version. The store's own retry of a broken body is bounded by its retry
/// timeout, counted from the first request: a multi-gigabyte GET outlives
/// it and would otherwise fail on the first hiccup. A location's download
/// and a repository's reads of its immutable objects both go through it.
#[cfg(feature = "remote")]
pub(crate) struct Resume {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    path: object_store::path::Path,
    size: u64,
    /// Where the bytes wanted end (the object's size for a whole object).
    end: u64,
    e_tag: Option<String>,
    last_modified: chrono::DateTime<chrono::Utc>,
    /// Resumptions in a row that bring no byte before the read fails.
    max_fruitless: u32,
}

/// Why a [`Resume::drain`] stopped short: the last failure and the byte of
/// the object it stopped at.
#[cfg(feature = "remote")]
pub(crate) struct Broken {
    pub(crate) error: object_store::Error,
    /// Only a repository's reads name it (a download's error says how
    /// far it got in its own words).
    #[cfg_attr(not(feature = "repo"), allow(dead_code))]
    pub(crate) at: u64,
}

#[cfg(feature = "remote")]
impl Resume {
    /// For the object `meta` describes (as the first response gave it) at
    /// `path` of `store`, whose bytes are wanted up to `end`; gives up after
    /// `max_fruitless` resumptions in a row that bring nothing.
    pub(crate) fn new(
        store: std::sync::Arc<dyn object_store::ObjectStore>,
        path: object_store::path::Path,
        meta: &object_store::ObjectMeta,
        end: u64,
        max_fruitless: u32,
    ) -> Resume {
        Resume {
            store,
            path,
            size: meta.size,
            end,
            e_tag: meta.e_tag.clone(),
            last_modified: meta.last_modified,
            max_fruitless,
        }
    }

    /// Hands the bytes of `stream` (a response to a GET of the object from
    /// byte `start`) to `each` until byte `end`, resuming with a ranged GET
    /// from the byte reached whenever the response breaks or ends early.
    /// Stops early, with `Ok`, if `each` says so (`false`: the consumer is
    /// gone). Fails after the resumptions in a row that bring no byte run
    /// out, with the last failure and the byte reached; more bytes than
    /// asked for fail at once.
    pub(crate) async fn drain<F>(
        &self,
        start: u64,
        mut stream: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
        mut each: impl FnMut(Bytes) -> F,
    ) -> Result<(), Broken>
    where
        F: std::future::Future<Output = bool>,
    {
        let mut n = start;
        // Resumptions in a row that brought no byte.
        let mut fruitless = 0u32;
        loop {
            let failure = match stream.next().await {
                Some(Ok(b)) => {
                    if !b.is_empty() {
                        fruitless = 0;
                    }
                    n = n.saturating_add(b.len() as u64);
                    if n > self.end {
                        return Err(Broken {
                            error: self.failed(format!(
                                "the store sent more than the {} bytes asked for",
                                self.end.saturating_sub(start)
                            )),
                            at: n,
                        });
                    }
                    if !each(b).await {
                        return Ok(());
                    }
                    continue;
                }
                Some(Err(e)) => e,
                None if n == self.end => return Ok(()),
                None => self.failed(format!(
                    "the download ended after {} of {} bytes",
                    n.saturating_sub(start),
                    self.end.saturating_sub(start)
                )),
            };
            match self.from(n, failure, &mut fruitless).await {
                Ok(s) => stream = s,
                Err(error) => return Err(Broken { error, at: n }),
            }
        }
    }

    /// The store error for a read that went wrong by itself.
    fn failed(&self, text: String) -> object_store::Error {
        object_store::Error::Generic {
            // The store's "Generic download error: " prefix is stripped
            // from the text printed.
            store: "download",
            source: text.into(),
        }
    }

    /// The rest of the range from byte `n` (< end), asked with a ranged
    /// GET on the first response's ETag; `failure` is why the previous
    /// response ended, returned when resumptions that bring nothing run
    /// out (`fruitless` counts them and is reset by the caller on
    /// progress). An object replaced or deleted since is an error, never
    /// bytes of another version.
    async fn from(
        &self,
        n: u64,
        mut failure: object_store::Error,
        fruitless: &mut u32,
    ) -> Result<
        futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
        object_store::Error,
    > {
        loop {
            if *fruitless >= self.max_fruitless {
                return Err(failure);
            }
            let wait = RESUME_BACKOFF
                .saturating_mul(1 << (*fruitless).min(16))
                .min(MAX_RESUME_BACKOFF);
            *fruitless += 1;
            tokio::time::sleep(wait).await;
            let opts = object_store::GetOptions {
                range: Some(object_store::GetRange::Bounded(n..self.end)),
                if_match: self.e_tag.clone(),
                ..Default::default()
            };
            match self.store.get_opts(&self.path, opts).await {
                Ok(got) => {
                    let same = got.meta.size == self.size
                        && got.meta.e_tag == self.e_tag
                        && got.meta.last_modified == self.last_modified;
                    if !same || got.range != (n..self.end) {
                        return Err(self.changed(n, &got.meta));
                    }
                    return Ok(got.into_stream());
                }
                Err(object_store::Error::Precondition { .. }) => {
                    return Err(self.changed_text(n, "it was replaced"));
                }
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(self.changed_text(n, "it was deleted"));
                }
                // A refusal (expired credentials) will not pass by itself.
                Err(
                    e @ (object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }),
                ) => return Err(e),
                Err(e) => failure = e,
            }
        }
    }

    fn changed(&self, n: u64, now: &object_store::ObjectMeta) -> object_store::Error {
        let what = match (&self.e_tag, &now.e_tag) {
            (Some(a), Some(b)) if a != b => format!("its ETag went from {a} to {b}"),
            _ if now.size != self.size => {
                format!("its size went from {} to {}", self.size, now.size)
            }
            _ => "it was replaced".to_string(),
        };
        self.changed_text(n, &what)
    }

    fn changed_text(&self, n: u64, what: &str) -> object_store::Error {
        self.failed(format!(
            "the object changed during the download ({what}) after {n} of {} bytes",
            self.size
        ))
    }
}

#[cfg(feature = "remote")]
fn open_download(remote: &Remote, text: &str) -> Result<(Download, u64), LocationError> {
    let transfer = |e: String| LocationError::transfer(text, "download", e);
    let got = remote
        .block_on(remote.store.get(&remote.path))
        .map_err(transfer)?;
    let got = match got {
        Ok(g) => g,
        Err(e @ object_store::Error::NotFound { .. }) => {
            // Some servers answer NoSuchKey for a missing bucket too: ask
            // about the bucket before saying which is missing.
            if let Ok(Err(list)) = remote.block_on(remote.store.list_with_delimiter(None)) {
                return Err(LocationError::not_found_because(
                    text,
                    &cause(&list),
                    Some(Box::new(e)),
                ));
            }
            return Err(LocationError::store(text, "download", e));
        }
        Err(e) => return Err(LocationError::store(text, "download", e)),
    };
    let size = got.meta.size;
    let (tx, rx) = tokio::sync::mpsc::channel(DOWNLOAD_DEPTH);
    let rt = remote.runtime().map_err(transfer)?;
    let resume = Resume::new(
        remote.store.clone(),
        remote.path.clone(),
        &got.meta,
        size,
        MAX_FRUITLESS_RESUMES,
    );
    let task = rt.spawn(async move {
        let sent = resume
            .drain(0, got.into_stream(), |b| {
                // A clone per chunk: the future may not borrow the closure.
                let tx = tx.clone();
                async move { tx.send(Ok(b)).await.is_ok() }
            })
            .await;
        if let Err(broken) = sent {
            let _ = tx.send(Err(broken.error)).await;
        }
    });
    Ok((
        Download {
            rx,
            cur: Bytes::new(),
            task,
        },
        size,
    ))
}

impl Location {
    /// The bytes as stored (compressed, for a compressed location) and
    /// their length.
    fn raw_reader(&self) -> Result<(Box<dyn Read + Send>, u64), LocationError> {
        match self.target() {
            Target::Local(p) => {
                let f = File::open(p).map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => {
                        LocationError::not_found_because(self.as_str(), "", Some(Box::new(e)))
                    }
                    _ => LocationError::io(self.as_str(), "open", e),
                })?;
                let len = f
                    .metadata()
                    .map_err(|e| LocationError::io(self.as_str(), "stat", e))?
                    .len();
                Ok((Box::new(f), len))
            }
            #[cfg(feature = "remote")]
            Target::Remote(r) => {
                let (d, size) = open_download(r, self.as_str())?;
                Ok((Box::new(d), size))
            }
        }
    }

    /// Reads the location once, decompressing it, into `dst` (an empty
    /// file), hashing as it goes; with `sync`, the file is flushed to disk
    /// every 64 MiB. `progress` hears [`Phase::Read`] reports (bytes as
    /// stored, of the stored length).
    pub(crate) fn stream_into(
        &self,
        dst: &File,
        sync: bool,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Streamed, LocationError> {
        let (raw, total) = self.raw_reader()?;
        let counted: Box<dyn Read + Send + '_> = Box::new(Counted {
            inner: raw,
            done: 0,
            reported: 0,
            total,
            progress,
        });
        let format = self.compression();
        let mut reader = format
            .decoder(counted)
            .map_err(|e| LocationError::Decompress {
                location: self.as_str().to_string(),
                format: format.name(),
                cause: e.to_string(),
                source: Some(Box::new(e)),
            })?;
        stream_into(&mut reader, dst, sync, &|_| {}).map_err(|e| match e {
            StreamError::Read(e) => {
                if !e.get_ref().is_some_and(|r| r.is::<SourceFailure>()) {
                    return LocationError::Decompress {
                        location: self.as_str().to_string(),
                        format: format.name(),
                        cause: e.to_string(),
                        source: Some(Box::new(e)),
                    };
                }
                let op = if self.local_path().is_some() {
                    "read"
                } else {
                    "download"
                };
                match e.into_inner().map(|r| r.downcast::<SourceFailure>()) {
                    Some(Ok(f)) => LocationError::failed(
                        self.as_str(),
                        op,
                        one_line(&f.text),
                        f.refusal,
                        Some(f.source),
                    ),
                    // Checked just above.
                    _ => LocationError::transfer(self.as_str(), op, "read failed"),
                }
            }
            StreamError::Write(e) => LocationError::io(self.as_str(), "write a local copy", e),
            StreamError::Sync(e) => LocationError::io(self.as_str(), "fsync a local copy", e),
        })
    }

    /// Opens the snapshot at this location. A local, uncompressed file is
    /// opened in place ([`Snapshot::open`]); anything else is read once,
    /// decompressed and hashed on the way, into an unnamed temporary file
    /// (in [`LocationOptions::temp_dir`](super::LocationOptions::temp_dir),
    /// gone when the snapshot is dropped) and opened from there. Reports
    /// and errors name the location. Blocks the calling thread until the
    /// copy is complete (see [blocking calls and async code](crate#blocking-calls-and-async-code)).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use etcdsnap::{Location, TargetVersion};
    /// let snap = Location::parse("testdata/snapshots/small-v35.db")?.open_snapshot(&|_| {})?;
    /// assert_eq!(snap.status(TargetVersion::V3_5)?.revision, 4);
    /// # Ok(()) }
    /// ```
    pub fn open_snapshot(
        &self,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Snapshot, LocationError> {
        if let (Some(p), true) = (self.local_path(), self.is_plain_file()) {
            return Ok(Snapshot::open(p)?);
        }
        let dir = self.options().temp_dir();
        let tmp = tempfile::tempfile_in(&dir).map_err(|e| {
            LocationError::transfer(
                self.as_str(),
                "create a temporary copy",
                format!("{}: {}", dir.display(), crate::go::errno::text(&e)),
            )
        })?;
        let streamed = self.stream_into(&tmp, false, progress)?;
        let file =
            SnapshotFile::from_file(tmp, self.as_str())?.with_body_digest(streamed.body_digest);
        Ok(Snapshot::from_file(file))
    }
}
