//! A repository in object storage (`s3://bucket/prefix`, `gs://`, `az://`),
//! through the location code's store (its client, credentials from the
//! environment, retries and runtime).
//!
//! Objects are immutable and named by their hash, so a single PUT is all a
//! write needs to appear whole or not at all. What a bucket does not have:
//! * a local file for the redb index. It lives in a cache directory on
//!   this machine (`$ETCDSNAP_CACHE_DIR`, else `$XDG_CACHE_HOME/etcdsnap`,
//!   else `~/.cache/etcdsnap`), one per repository URL. Every command
//!   brings it up to date from the listing of the objects, as for a local
//!   repository, so a lost or stale cache costs reading pack trailers,
//!   never a wrong answer.
//! * `flock`. Locks are objects under `locks/`: a taker writes its own
//!   (`exclusive-...` or `shared-...`), then lists the others; an
//!   exclusive lock conflicts with any other, a shared one with an
//!   exclusive one. On a conflict it removes its own and fails (or waits
//!   and tries again), so two takers that race both back off rather than
//!   both hold it. A held lock is rewritten every five minutes; one not
//!   rewritten for thirty (its holder died) is stale: ignored, and removed
//!   by the next exclusive taker, as restic does. Times are the store's
//!   own, so clocks need not agree. A taker that waits says on stderr (the
//!   CLI's notice) which lock objects it waits for, their holders' host
//!   and PID, how long ago each was renewed and when it goes stale;
//!   `backup unlock` removes stale lock objects at once (`--all`: every
//!   one, for a holder known to be gone), going by the store's clock read
//!   from a probe object it writes under `clock/` and removes.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use super::backend::{Backend, LockGuard};
use crate::location::read::{Broken, Resume};
use crate::location::store::{Remote, cause};

/// How often a held lock is rewritten.
const REFRESH: Duration = Duration::from_secs(5 * 60);
/// A lock not rewritten for this long belongs to a process that is gone.
const STALE: Duration = Duration::from_secs(30 * 60);
/// Pause between attempts of a lock taker that waits.
const RETRY: Duration = Duration::from_millis(500);

/// A repository under a prefix of an object store.
#[derive(Clone)]
pub(crate) struct ObjectBackend {
    remote: Arc<Remote>,
    text: String,
    cache: PathBuf,
    /// Ranged retries of a read of an immutable object that broke, from
    /// the byte reached, in a row without progress (the location's
    /// [`retries`](crate::location::LocationOptions::retries)).
    retries: u32,
}

impl std::fmt::Debug for ObjectBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBackend")
            .field("location", &self.text)
            .field("cache", &self.cache)
            .field("retries", &self.retries)
            .finish()
    }
}

/// Where caches go: `$ETCDSNAP_CACHE_DIR`, `$XDG_CACHE_HOME/etcdsnap`, or
/// `~/.cache/etcdsnap` (the system temp directory without a home).
fn cache_root() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("ETCDSNAP_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("etcdsnap")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("etcdsnap")))
        .unwrap_or_else(|| std::env::temp_dir().join("etcdsnap-cache"))
}

fn store_error(e: object_store::Error) -> io::Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, cause(&e))
}

fn runtime_error(e: String) -> io::Error {
    io::Error::other(e)
}

/// Whether the object under `key` is never rewritten under its name, so a
/// read that broke may take the rest from a later response: everything
/// but lock objects (rewritten while held) and the clock probe.
fn immutable(key: &str) -> bool {
    !key.starts_with("locks/") && !key.starts_with("clock/")
}

fn too_large(size: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{size} bytes, more than the {max} such an object can hold"),
    )
}

/// A read of `range` of an object that broke at a byte and could not go
/// on: where, and why (the caller names the object).
fn broken(b: Broken, range: std::ops::Range<u64>, retries: u32) -> io::Error {
    let kind = match b.error {
        object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    let tries = match retries {
        0 => "no retries allowed".to_string(),
        1 => "1 retry from there brought no byte".to_string(),
        n => format!("{n} retries in a row from there brought no byte"),
    };
    io::Error::new(
        kind,
        format!(
            "the read of bytes {}..{} broke off at byte {} ({tries}): {}",
            range.start,
            range.end,
            b.at,
            cause(&b.error)
        ),
    )
}

impl ObjectBackend {
    /// The repository at `remote` (its path is the repository's prefix),
    /// shown as `text`; its index is cached under the cache directory. A
    /// read of an immutable object that breaks goes on from the byte it
    /// reached, up to `retries` times in a row without progress.
    pub(crate) fn new(
        remote: Arc<Remote>,
        text: &str,
        retries: usize,
    ) -> io::Result<ObjectBackend> {
        let digest = blake3::hash(text.trim_end_matches('/').as_bytes());
        let name = super::codec::hex(digest.as_bytes().get(..12).unwrap_or_default());
        let cache = cache_root().join("repos").join(name);
        std::fs::create_dir_all(cache.join("tmp"))?;
        Ok(ObjectBackend {
            remote,
            text: text.trim_end_matches('/').to_string(),
            cache,
            retries: u32::try_from(retries).unwrap_or(u32::MAX),
        })
    }

    /// The object path of `key` (checked as the local backend checks it).
    fn path(&self, key: &str) -> io::Result<ObjectPath> {
        if !super::backend::keys::valid(key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid object key {key:?}"),
            ));
        }
        let base = self.remote.path.as_ref();
        Ok(if base.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{base}/{key}"))
        })
    }

    /// The key of an object path under the repository's prefix.
    fn key_of(&self, p: &ObjectPath) -> Option<String> {
        let base = self.remote.path.as_ref();
        let full = p.as_ref();
        if base.is_empty() {
            return Some(full.to_string());
        }
        full.strip_prefix(base)?
            .strip_prefix('/')
            .map(str::to_string)
    }

    fn block_on<F>(&self, fut: F) -> io::Result<F::Output>
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        self.remote.block_on(fut).map_err(runtime_error)
    }

    /// Every lock object: key and last modification (the store's clock).
    fn locks(&self) -> io::Result<Vec<(String, chrono::DateTime<chrono::Utc>)>> {
        let prefix = self.path("locks")?;
        let store = self.remote.store.clone();
        let metas = self
            .block_on(async move { store.list(Some(&prefix)).try_collect::<Vec<_>>().await })?
            .map_err(store_error)?;
        Ok(metas
            .iter()
            .filter_map(|m| Some((self.key_of(&m.location)?, m.last_modified)))
            .collect())
    }
}

impl Backend for ObjectBackend {
    fn location(&self) -> String {
        self.text.clone()
    }

    fn read(&self, key: &str, max: u64) -> io::Result<Vec<u8>> {
        let p = self.path(key)?;
        let store = self.remote.store.clone();
        let retries = if immutable(key) { self.retries } else { 0 };
        self.block_on(async move {
            let got = store.get(&p).await.map_err(store_error)?;
            let size = got.meta.size;
            if size > max {
                return Err(too_large(size, max));
            }
            let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            let resume = Resume::new(store, p, &got.meta, size, retries);
            resume
                .drain(0, got.into_stream(), |b| {
                    out.extend_from_slice(&b);
                    std::future::ready(true)
                })
                .await
                .map_err(|b| broken(b, 0..size, retries))?;
            Ok(out)
        })?
    }

    fn read_at(&self, key: &str, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let p = self.path(key)?;
        let len = buf.len() as u64;
        let end = offset.checked_add(len).ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "range past any object's end")
        })?;
        if len == 0 {
            return Ok(());
        }
        let store = self.remote.store.clone();
        let retries = if immutable(key) { self.retries } else { 0 };
        let short = |got: u64| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{len} bytes at {offset}: the store returned {got}"),
            )
        };
        self.block_on(async move {
            let opts = object_store::GetOptions {
                range: Some(object_store::GetRange::Bounded(offset..end)),
                ..Default::default()
            };
            let got = store.get_opts(&p, opts).await.map_err(store_error)?;
            // A range past the end is answered with what there is.
            if got.range != (offset..end) {
                return Err(short(got.range.end.saturating_sub(got.range.start)));
            }
            let mut filled = 0usize;
            let resume = Resume::new(store, p, &got.meta, end, retries);
            resume
                .drain(offset, got.into_stream(), |b| {
                    let to = filled.saturating_add(b.len());
                    if let Some(dst) = buf.get_mut(filled..to) {
                        dst.copy_from_slice(&b);
                    }
                    filled = to;
                    std::future::ready(true)
                })
                .await
                .map_err(|b| broken(b, offset..end, retries))?;
            Ok(())
        })?
    }

    fn write(&self, key: &str, data: &[u8]) -> io::Result<()> {
        self.put(key, data.to_vec())
    }

    fn write_file(&self, key: &str, tmp: &std::path::Path) -> io::Result<()> {
        // Read into the one buffer the request sends.
        self.put(key, std::fs::read(tmp)?)
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<(String, u64)>> {
        let dir = self.path(prefix.trim_end_matches('/'))?;
        let store = self.remote.store.clone();
        let metas = self
            .block_on(async move { store.list(Some(&dir)).try_collect::<Vec<_>>().await })?
            .map_err(store_error)?;
        let mut out: Vec<(String, u64)> = metas
            .iter()
            .filter_map(|m| Some((self.key_of(&m.location)?, m.size)))
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        out.sort();
        Ok(out)
    }

    fn remove(&self, key: &str) -> io::Result<()> {
        let p = self.path(key)?;
        let store = self.remote.store.clone();
        match self.block_on(async move { store.delete(&p).await })? {
            Ok(()) => {
                super::backend::crash_point();
                Ok(())
            }
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    fn index_dir(&self) -> PathBuf {
        self.cache.clone()
    }

    fn index_is_cache(&self) -> bool {
        true
    }

    fn lock(&self, exclusive: bool, wait: bool) -> io::Result<Box<dyn LockGuard>> {
        if wait {
            return self.lock_waiting(exclusive, &|_: &str| {});
        }
        match self.try_lock(exclusive)? {
            Ok(guard) => Ok(guard),
            Err(holders) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "the repository is locked by another etcdsnap (a push, prune or check): {} (a lock not renewed for 30 minutes is ignored; `etcdsnap backup unlock` removes such a lock)",
                    describe(&holders)
                ),
            )),
        }
    }

    fn lock_waiting(
        &self,
        exclusive: bool,
        notice: &dyn Fn(&str),
    ) -> io::Result<Box<dyn LockGuard>> {
        let started = std::time::Instant::now();
        let mut told: Option<(std::time::Instant, Vec<String>)> = None;
        loop {
            let holders = match self.try_lock(exclusive)? {
                Ok(guard) => return Ok(guard),
                Err(h) => h,
            };
            // Said at once, again every minute, and whenever the holders
            // change.
            let names: Vec<String> = holders.iter().map(|h| h.key.clone()).collect();
            let due = told
                .as_ref()
                .is_none_or(|(t, n)| t.elapsed() >= super::backend::NOTICE_EVERY || *n != names);
            if due {
                let until = holders
                    .iter()
                    .map(|h| h.stale_at)
                    .max()
                    .map(|t| {
                        format!(
                            "until it is released, or at the latest until {} when a holder that stopped renewing its lock is taken for dead",
                            t.format("%Y-%m-%dT%H:%M:%SZ")
                        )
                    })
                    .unwrap_or_default();
                notice(&format!(
                    "waiting for the lock of {}: {}; waiting {until}{} (`etcdsnap backup unlock {}` removes a lock whose holder is gone for good)",
                    self.text,
                    describe(&holders),
                    if started.elapsed().as_secs() > 0 {
                        format!(", waited {} so far", super::backend::ago(started.elapsed()))
                    } else {
                        String::new()
                    },
                    self.text
                ));
                told = Some((std::time::Instant::now(), names));
            }
            std::thread::sleep(RETRY);
        }
    }

    fn unlock(&self, all: bool) -> io::Result<super::backend::UnlockReport> {
        // The store's clock, from an object written now (not under
        // `locks/`, where it would count as a lock).
        let nonce =
            super::codec::hex(&super::crypto::random16("clock probe").map_err(io::Error::other)?);
        let probe = format!("clock/{nonce}");
        self.write(&probe, b"")?;
        let now = self.modified(&probe)?;
        self.remove(&probe)?;
        let now = now.ok_or_else(|| io::Error::other("the store lost an object just written"))?;
        let mut report = super::backend::UnlockReport::default();
        for (key, t) in self.locks()? {
            let h = Holder::of(&key, t, now);
            if all || h.stale {
                self.remove(&key)?;
                report.removed.push(h.to_string());
            } else {
                report.held.push(h.to_string());
            }
        }
        Ok(report)
    }
}

/// A lock object, as a waiting taker or `unlock` describes it.
#[derive(Debug, Clone)]
struct Holder {
    key: String,
    exclusive: bool,
    host: Option<String>,
    pid: Option<u32>,
    /// Since it was last written, by the store's clock.
    age: Duration,
    /// When it is taken for dead if not renewed (store's clock).
    stale_at: chrono::DateTime<chrono::Utc>,
    stale: bool,
}

impl Holder {
    /// `locks/{kind}-{host}-{pid}-{nonce}` (the host may hold `-`).
    fn of(
        key: &str,
        modified: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Holder {
        let name = key.strip_prefix("locks/").unwrap_or(key);
        let mut parts: Vec<&str> = name.split('-').collect();
        let (mut host, mut pid) = (None, None);
        if parts.len() >= 4 {
            parts.pop();
            pid = parts.pop().and_then(|p| p.parse().ok());
            host = Some(parts.get(1..).unwrap_or_default().join("-"));
        }
        let age = now
            .signed_duration_since(modified)
            .to_std()
            .unwrap_or_default();
        let stale_at = modified
            + chrono::Duration::from_std(STALE).unwrap_or_else(|_| chrono::Duration::zero());
        Holder {
            key: key.to_string(),
            exclusive: name.starts_with("exclusive-"),
            host,
            pid,
            age,
            stale_at,
            stale: age > STALE,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}",
            self.key,
            if self.exclusive {
                "exclusive"
            } else {
                "shared"
            }
        )?;
        if let Some(h) = &self.host {
            write!(f, ", host {h}")?;
        }
        if let Some(p) = self.pid {
            write!(f, ", pid {p}")?;
        }
        write!(
            f,
            ", last renewed {} ago{})",
            super::backend::ago(self.age),
            if self.stale {
                ", stale".to_string()
            } else {
                format!(
                    ", stale at {} unless renewed",
                    self.stale_at.format("%Y-%m-%dT%H:%M:%SZ")
                )
            }
        )
    }
}

fn describe(holders: &[Holder]) -> String {
    let v: Vec<String> = holders.iter().map(|h| format!("held by {h}")).collect();
    v.join(", ")
}

impl ObjectBackend {
    /// Stores `data` as object `key` in one request.
    fn put(&self, key: &str, data: Vec<u8>) -> io::Result<()> {
        let p = self.path(key)?;
        let store = self.remote.store.clone();
        let payload = PutPayload::from(data);
        self.block_on(async move { store.put(&p, payload).await })?
            .map(|_| ())
            .map_err(store_error)?;
        super::backend::crash_point();
        Ok(())
    }

    /// The last modification of an object (the store's clock).
    fn modified(&self, key: &str) -> io::Result<Option<chrono::DateTime<chrono::Utc>>> {
        let p = self.path(key)?;
        let store = self.remote.store.clone();
        match self.block_on(async move { store.head(&p).await })? {
            Ok(m) => Ok(Some(m.last_modified)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(store_error(e)),
        }
    }

    /// One attempt at the lock: the guard, or (having removed its own
    /// lock object again) the holders in the way.
    fn try_lock(
        &self,
        exclusive: bool,
    ) -> io::Result<std::result::Result<Box<dyn LockGuard>, Vec<Holder>>> {
        let kind = if exclusive { "exclusive" } else { "shared" };
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            .unwrap_or_else(|| "host".into());
        // Two takers in one process, or on two hosts of the same name,
        // must not share a name.
        let nonce =
            super::codec::hex(&super::crypto::random16("lock name").map_err(io::Error::other)?);
        let key = format!("locks/{kind}-{host}-{}-{nonce}", std::process::id());
        self.write(&key, format!("pid {}\n", std::process::id()).as_bytes())?;
        let all = self.locks()?;
        // Ages go by the store's clock: the time it gave this taker's own
        // lock. Not listed (a store slow to list what it was just given),
        // no other lock is taken for stale.
        let mine = all.iter().find(|(k, _)| *k == key).map(|(_, t)| *t);
        let holders: Vec<Holder> = all
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(k, t)| Holder::of(k, *t, mine.unwrap_or(*t)))
            .collect();
        let in_way: Vec<Holder> = holders
            .iter()
            .filter(|h| !h.stale && (exclusive || h.exclusive))
            .cloned()
            .collect();
        if in_way.is_empty() {
            // Whoever holds the lock exclusively clears what dead holders
            // left behind.
            if exclusive {
                for h in holders.iter().filter(|h| h.stale) {
                    let _ = self.remove(&h.key);
                }
            }
            return Ok(Ok(Box::new(RemoteLock::hold(self, key))));
        }
        self.remove(&key)?;
        Ok(Err(in_way))
    }
}

/// A held lock object: rewritten in the background until dropped, then
/// removed.
struct RemoteLock {
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for RemoteLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLock").finish_non_exhaustive()
    }
}

impl RemoteLock {
    fn hold(b: &ObjectBackend, key: String) -> RemoteLock {
        let (stop, stopped) = mpsc::channel::<()>();
        let backend = b.clone();
        let refresher = std::thread::spawn(move || {
            loop {
                match stopped.recv_timeout(REFRESH) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        let _ =
                            backend.write(&key, format!("pid {}\n", std::process::id()).as_bytes());
                    }
                    // Dropped: the lock goes with it.
                    _ => {
                        let _ = backend.remove(&key);
                        return;
                    }
                }
            }
        });
        RemoteLock {
            stop: Some(stop),
            refresher: Some(refresher),
        }
    }
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
    }
}

impl LockGuard for RemoteLock {}
