//! A multipart upload behind a blocking `Write`: bytes are cut into parts
//! that upload on the store's runtime (a few at once) while the caller
//! goes on writing. Completing the upload is a separate step; an upload
//! dropped before it is aborted, so nothing appears under the key (dropped
//! inside a tokio runtime, the abort runs in the background).

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use object_store::{MultipartUpload, ObjectStoreExt, PutPayload};

use super::store::{Remote, cause};

/// How long an abort may take when an upload is dropped.
const ABORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an upload failed: the text shown (the store's error on one line,
/// or what went wrong here) and the store's error itself, kept as the
/// [`LocationError`](super::LocationError)'s source. Cloned because a
/// failure is remembered and returned again by later calls.
#[derive(Debug, Clone)]
pub(crate) struct UploadError {
    pub(crate) cause: String,
    pub(crate) source: Option<Arc<object_store::Error>>,
}

impl UploadError {
    fn store(e: object_store::Error) -> UploadError {
        UploadError {
            cause: cause(&e),
            source: Some(Arc::new(e)),
        }
    }
}

impl From<String> for UploadError {
    fn from(cause: String) -> UploadError {
        UploadError {
            cause,
            source: None,
        }
    }
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cause)
    }
}

impl std::error::Error for UploadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// An upload in progress.
pub(crate) struct Upload {
    remote: Arc<Remote>,
    upload: Option<Box<dyn MultipartUpload>>,
    buf: Vec<u8>,
    part_size: usize,
    concurrency: usize,
    inflight: VecDeque<(tokio::task::JoinHandle<Result<(), UploadError>>, u64)>,
    parts: usize,
    uploaded: u64,
    failed: Option<UploadError>,
    completed: bool,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("parts", &self.parts)
            .field("uploaded", &self.uploaded)
            .finish()
    }
}

impl Upload {
    /// Starts a multipart upload to the remote's key.
    pub(crate) fn start(
        remote: Arc<Remote>,
        part_size: usize,
        concurrency: usize,
    ) -> Result<Upload, UploadError> {
        // The field is public: clamp here too, so no value sizes a buffer
        // beyond what S3 takes in a part.
        let part_size = part_size.clamp(1, super::options::MAX_PART_SIZE);
        let upload = remote
            .block_on(remote.store.put_multipart(&remote.path))?
            .map_err(UploadError::store)?;
        Ok(Upload {
            remote,
            upload: Some(upload),
            buf: Vec::with_capacity(part_size),
            part_size,
            concurrency: concurrency.max(1),
            inflight: VecDeque::new(),
            parts: 0,
            uploaded: 0,
            failed: None,
            completed: false,
        })
    }

    /// Bytes whose parts have been uploaded.
    pub(crate) fn uploaded(&self) -> u64 {
        self.uploaded
    }

    /// Parts started so far.
    pub(crate) fn parts(&self) -> usize {
        self.parts
    }

    fn fail(&mut self, why: UploadError) -> io::Error {
        self.failed.get_or_insert(why.clone());
        io::Error::other(why)
    }

    /// Waits for the oldest part in flight.
    fn wait_one(&mut self) -> Result<(), UploadError> {
        let Some((h, len)) = self.inflight.pop_front() else {
            return Ok(());
        };
        match self.remote.block_on(h)? {
            Ok(Ok(())) => {
                self.uploaded = self.uploaded.saturating_add(len);
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(e) => Err(format!("upload task failed: {e}").into()),
        }
    }

    /// Sends what is buffered as the next part, once fewer than
    /// `concurrency` parts are in flight.
    fn send_part(&mut self) -> Result<(), UploadError> {
        while self.inflight.len() >= self.concurrency {
            self.wait_one()?;
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        let len = data.len() as u64;
        let Some(upload) = self.upload.as_mut() else {
            return Err(String::from("the upload is closed").into());
        };
        let part = upload.put_part(PutPayload::from(data));
        let rt = self.remote.runtime()?;
        self.inflight.push_back((
            rt.spawn(async move { part.await.map_err(UploadError::store) }),
            len,
        ));
        self.parts += 1;
        Ok(())
    }

    /// Sends the last part and waits until every part is stored; the
    /// object is still not visible.
    pub(crate) fn finish_parts(&mut self) -> Result<(), UploadError> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        // A multipart upload needs at least one part, even an empty one.
        if !self.buf.is_empty() || self.parts == 0 {
            self.send_part()?;
        }
        while !self.inflight.is_empty() {
            self.wait_one()?;
        }
        Ok(())
    }

    /// Makes the object visible under its key.
    pub(crate) fn complete(mut self) -> Result<(), UploadError> {
        self.finish_parts()?;
        let Some(mut upload) = self.upload.take() else {
            return Err(String::from("the upload is closed").into());
        };
        match self.remote.block_on(upload.complete())? {
            Ok(_) => {
                self.completed = true;
                Ok(())
            }
            Err(e) => {
                // Leave no parts behind on the server.
                let _ = self.remote.block_on(upload.abort());
                Err(UploadError::store(e))
            }
        }
    }
}

impl Upload {
    /// Stops the upload now: parts in flight are cancelled and the
    /// multipart upload is aborted, so the server keeps no parts (what
    /// dropping it does, with the outcome reported).
    pub(crate) fn abort(&mut self) -> Result<(), String> {
        for (h, _) in self.inflight.drain(..) {
            h.abort();
        }
        let Some(mut upload) = self.upload.take() else {
            return Ok(());
        };
        match self
            .remote
            .block_on(async { tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await })?
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(cause(&e)),
            Err(_) => Err(format!("no answer within {} s", ABORT_TIMEOUT.as_secs())),
        }
    }
}

impl Write for Upload {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        if let Some(f) = &self.failed {
            return Err(io::Error::other(f.clone()));
        }
        let n = data.len();
        while !data.is_empty() {
            let room = self.part_size - self.buf.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.buf.extend_from_slice(now);
            data = rest;
            if self.buf.len() == self.part_size {
                self.send_part().map_err(|e| self.fail(e))?;
            }
        }
        // Collect parts that are done, so failures show early.
        while self.inflight.front().is_some_and(|(h, _)| h.is_finished()) {
            self.wait_one().map_err(|e| self.fail(e))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        if !super::store::in_runtime() {
            let _ = self.abort();
            return;
        }
        // Dropped by async code (an embedder's task): waiting here for the
        // server would hold up its thread, so the abort is left to the I/O
        // runtime. Until it is done (or if the process ends first) the
        // parts stay on the server, as after a kill; nothing is visible
        // under the key either way.
        for (h, _) in self.inflight.drain(..) {
            h.abort();
        }
        let Some(mut upload) = self.upload.take() else {
            return;
        };
        if let Ok(rt) = self.remote.runtime() {
            drop(rt.spawn(async move {
                let _ = tokio::time::timeout(ABORT_TIMEOUT, upload.abort()).await;
            }));
        }
    }
}
