//! Rewriting a snapshot into a new, densely packed one: what
//! `etcdutl defrag` does to a data dir (every bucket copied in key order
//! into a fresh file at fill percent 0.9), optionally after applying
//! etcd's compaction at a revision (`etcdctl compact`), without booting
//! etcd.
//!
//! The new file is written once, in order, straight to the destination:
//! a [dry run](crate::bolt::Loader::dry_run) of the bulk loader over the
//! source works out where every page goes (and the `snapshot status` of
//! the result), then [`Loader::in_order`](crate::bolt::Loader::in_order)
//! streams the metas and every page to the location's writer, hashing them
//! as they go, and the SHA-256 trailer follows. No temporary copy is made,
//! whatever the location (a file, `.zst`, an object store), and memory
//! stays bounded by a few pages per tree level. The result is published
//! under its name only when complete, as every location is (`OUT.part`
//! renamed, a multipart upload completed); a local uncompressed result is
//! also checked before it is renamed. A rewrite that fails or is killed
//! leaves the destination as it was (a SIGKILLed one may leave `OUT.part`,
//! as `snapshot save` may).
//!
//! For tests only: when the environment variable
//! `ETCDSNAP_TEST_REWRITE_CRASH_AFTER` holds a number N, the process sends
//! itself SIGKILL right after the N-th write to the destination (about a
//! MiB each), counting the completed store (before publishing) and the
//! publishing as one write each; the crash tests stop the command at every
//! such point. It is read in this one place and has no other effect.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use etcdsnap::{Location, RewriteOptions, Snapshot, rewrite};
//!
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("compacted.db");
//! let src = Snapshot::open("testdata/snapshots/small-v35.db")?;
//! let opts = RewriteOptions::default().with_compact(0);
//! let done = rewrite(&src, &Location::parse(out.to_str().unwrap())?, &opts)?;
//! assert_eq!(done.compacted, Some(4));
//! let snap = Snapshot::open(&out)?;
//! assert!(snap.verify(&Default::default()).is_ok());
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::bolt::load::CopyError;
use crate::bolt::{Bucket, Db, LeafElem, LoadError, LoadOptions, Loader, Visitor};
use crate::etcd::{Status, StatusVisitor, TargetVersion, buckets, meta};
use crate::location::{Compression, Location, LocationError, LocationWriter};
use crate::mvcc::{Compaction, MvccError, Store};
use crate::snapshot::file::SnapshotFile;
use crate::snapshot::hash::{self, HashCheck};
use crate::snapshot::{Snapshot, SnapshotError};

mod apply;

#[cfg(feature = "repo")]
pub(crate) use apply::prepare_apply;
pub use apply::{
    ApplyOptions, ApplySummary, ChangeError, PointInTime, apply_changes, check_chain, resolve_time,
};

/// Bytes written between two releases of the source's map (so that the
/// resident set does not grow with the file).
const RELEASE_EVERY: u64 = 32 << 20;

/// Bytes read per step when an applied file is stored.
const CHUNK: usize = 1 << 20;

/// What to do to the snapshot besides packing it densely.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct RewriteOptions {
    /// Apply etcd's compaction at this revision first (`Some(0)`: at the
    /// current revision); `None` only defragments.
    pub compact: Option<i64>,
    /// The release whose rules decide the current and compacted revisions
    /// and the status reported for the result.
    pub target: TargetVersion,
}

impl Default for RewriteOptions {
    fn default() -> Self {
        RewriteOptions {
            compact: None,
            target: TargetVersion::V3_5,
        }
    }
}

impl RewriteOptions {
    /// Apply etcd's compaction at `revision` first (0: at the current
    /// revision); `None` only defragments.
    pub fn with_compact(mut self, revision: impl Into<Option<i64>>) -> Self {
        self.compact = revision.into();
        self
    }

    /// The release whose rules decide the revisions and the status reported.
    pub fn with_target(mut self, target: TargetVersion) -> Self {
        self.target = target;
        self
    }
}

/// What a rewrite wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RewriteSummary {
    /// Where the result was published.
    pub location: String,
    /// Length of the source file (trailer included).
    pub size_before: u64,
    /// Length of the result (with its SHA-256 trailer).
    pub size_after: u64,
    /// The revision compacted at, if a compaction was asked for.
    pub compacted: Option<i64>,
    /// Entries of the `key` bucket the compaction removed.
    pub removed: u64,
    /// `snapshot status` of the result.
    pub status: Status,
}

/// Why a rewrite failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewriteError {
    /// The source could not be read (or the result failed its check).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The source's trailer does not match its body (etcd's wording).
    #[error("expected sha256 {}, got {}", go_bytes(stored), go_bytes(computed))]
    HashMismatch {
        /// Digest stored in the file.
        stored: [u8; 32],
        /// Digest of the body.
        computed: [u8; 32],
    },
    /// The compaction was refused (etcd's words), or the `key` bucket
    /// cannot be read as etcd's.
    #[error(transparent)]
    Mvcc(#[from] MvccError),
    /// The source could not be read as a bbolt file.
    #[error(transparent)]
    Read(crate::bolt::BoltError),
    /// The new file could not be written: the loader refused an entry or
    /// could not write.
    #[error(transparent)]
    Load(LoadError),
    /// The result could not be stored or published.
    #[error(transparent)]
    Location(#[from] LocationError),
    /// The recorded changes cannot be applied to the snapshot (or not up
    /// to the point asked for).
    #[error(transparent)]
    Changes(#[from] ChangeError),
    /// The file written is not the one planned (a bug, or a source that
    /// changed under the rewrite); it was not published.
    #[error(
        "the rewritten file does not hold what was planned (status {written:?}, planned {planned:?}); it was not published"
    )]
    NotAsPlanned {
        /// The status planned from the source.
        planned: Box<Status>,
        /// The status of what was written.
        written: Box<Status>,
    },
    /// A local file operation failed.
    #[error("{op} {}: {}", path.display(), crate::go::errno::text(source))]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl From<LoadError> for RewriteError {
    fn from(e: LoadError) -> Self {
        RewriteError::Load(e)
    }
}

impl From<crate::bolt::BoltError> for RewriteError {
    fn from(e: crate::bolt::BoltError) -> Self {
        RewriteError::Read(e)
    }
}

/// A copy's failure as a rewrite's (the copy's error type is the crate's
/// own).
pub(crate) fn from_copy(e: CopyError) -> RewriteError {
    match e {
        CopyError::Read(e) => RewriteError::Read(e),
        CopyError::Load(e) => RewriteError::Load(e),
    }
}

fn go_bytes(b: &[u8]) -> String {
    let parts: Vec<String> = b.iter().map(u8::to_string).collect();
    format!("[{}]", parts.join(" "))
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RewriteError + use<> {
    let path = path.to_path_buf();
    move |source| RewriteError::Io { op, path, source }
}

/// Rewrites `src` into `out` densely packed (and compacted, if asked);
/// see the module documentation.
pub fn rewrite(
    src: &Snapshot,
    out: &Location,
    opts: &RewriteOptions,
) -> Result<RewriteSummary, RewriteError> {
    let (file, db) = checked_source(src)?;
    let compaction = match opts.compact {
        Some(rev) => Some(open_store(src)?.with_rules(opts.target).compaction(rev)?),
        None => None,
    };
    let load = load_options(db);
    let root = db.root();

    // The plan: where every page goes, and the status of the result.
    let mut status = StatusVisitor::new(opts.target);
    let mut dry = Loader::dry_run(load)?;
    releasing(&mut dry, file, &|_| {});
    let removed = copy_root(&mut dry, &root, compaction.as_ref(), None, &mut status)?;
    let (_, plan) = dry.finish()?;
    file.map().release();
    let body_len = plan.pages.saturating_mul(u64::from(db.page_size()));
    let status = status.finish(body_len).map_err(SnapshotError::from)?;

    // The file, once, in order, hashed on the way.
    let mut w = out.create()?;
    let mut stream = Hashed {
        out: &mut w,
        hash: Sha256::new(),
        pos: 0,
        failed: None,
    };
    let written = write_planned(&mut stream, file, &root, compaction.as_ref(), load, &plan);
    if let Err(e) = written {
        return Err(stream.failed.take().map_or(e, RewriteError::Location));
    }
    let digest: [u8; 32] = stream.hash.finalize().into();
    w.write_all(&digest)?;
    crash_point();
    w.finish()?;
    crash_point();
    // A local file is read back and checked before it gets its name.
    if let (Some(target), Compression::None) = (out.local_path(), out.compression()) {
        check_written(target, opts.target, &status)?;
    }
    let location = w.publish()?;
    crash_point();
    Ok(RewriteSummary {
        location,
        size_before: src.file_len(),
        size_after: body_len + digest.len() as u64,
        compacted: compaction.as_ref().map(Compaction::revision),
        removed,
        status,
    })
}

/// The source's database, refused when the file is shorter than it or
/// its trailer does not match its body: a damaged source must not come
/// out with a fresh, valid trailer.
fn checked_source(src: &Snapshot) -> Result<(&SnapshotFile, Db<'_>), RewriteError> {
    let file = src.file();
    let db = src.db()?;
    if db.size() > src.body_len() {
        return Err(SnapshotError::Truncated {
            path: src.path().to_path_buf(),
            needed: db.size(),
            have: src.body_len(),
        }
        .into());
    }
    if let Some(stored) = src.trailer() {
        let computed = hash::body_sha256(file, &|_| {}).map_err(io_err("read", src.path()))?;
        if let HashCheck::Mismatch { stored, computed } = HashCheck::compare(stored, computed) {
            return Err(RewriteError::HashMismatch { stored, computed });
        }
    }
    Ok((file, db))
}

/// The MVCC store of the source (pages read are released as it goes).
fn open_store(src: &Snapshot) -> Result<Store<'_>, RewriteError> {
    Store::open(src).map_err(|e| match e {
        crate::mvcc::OpenError::Snapshot(e) => RewriteError::Snapshot(e),
        crate::mvcc::OpenError::Mvcc(e) => RewriteError::Mvcc(e),
    })
}

/// An unnamed temporary file beside the destination (or in the
/// location's temporary directory): nothing is left behind if the
/// rewrite fails or is killed.
fn temp_file(out: &Location) -> Result<File, RewriteError> {
    let dir = match out.local_path() {
        Some(p) => match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => out.options().temp_dir(),
    };
    tempfile::tempfile_in(&dir).map_err(io_err("create a temporary file in", &dir))
}

/// Checks the database written to `tmp` (its first `body_len` bytes) and
/// takes its status, then stores it at `out` with its SHA-256 trailer and
/// publishes it; where it went, its length with the trailer, its status.
fn publish(
    tmp: &File,
    body_len: u64,
    out: &Location,
    target: TargetVersion,
) -> Result<(String, u64, Status), RewriteError> {
    // The result is checked (and its status taken) before anyone sees it.
    let shown = PathBuf::from(out.as_str());
    let status = checked_status(tmp, &shown, target)?;

    let mut w = out.create()?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut off = 0u64;
    while off < body_len {
        let n = usize::try_from(body_len - off).unwrap_or(CHUNK).min(CHUNK);
        let chunk = buf.get_mut(..n).unwrap_or_default();
        tmp.read_exact_at(chunk, off)
            .map_err(io_err("read", &shown))?;
        h.update(&*chunk);
        w.write_all(chunk)?;
        off += n as u64;
    }
    let digest: [u8; 32] = h.finalize().into();
    w.write_all(&digest)?;
    let location = w.publish()?;
    Ok((location, body_len + digest.len() as u64, status))
}

/// Walks the database written to `tmp` (named `shown` in messages) with
/// every structural check and takes its status under `target`'s rules.
fn checked_status(tmp: &File, shown: &Path, target: TargetVersion) -> Result<Status, RewriteError> {
    let written = SnapshotFile::from_file(
        tmp.try_clone().map_err(io_err("reopen", shown))?,
        shown.to_path_buf(),
    )?;
    let threads = crate::bolt::WalkOptions::default().threads;
    let (wdb, visitor, _) =
        crate::snapshot::walk_checked(&written, StatusVisitor::new(target), threads)?;
    Ok(visitor.finish(wdb.size()).map_err(SnapshotError::from)?)
}

/// The layout of a dense copy of `db`: its page size, freelist style, txid
/// and root sequence.
fn load_options(db: Db<'_>) -> LoadOptions {
    LoadOptions::default()
        .with_page_size(db.page_size())
        .with_freelist(db.meta().has_synced_freelist())
        .with_txid(db.meta().txid)
        .with_root_sequence(db.meta().sequence)
}

/// Releases `file`'s map every [`RELEASE_EVERY`] bytes the loader writes,
/// telling `progress` the bytes written.
fn releasing<'a, W: Write + Seek>(
    loader: &mut Loader<'a, W>,
    file: &'a SnapshotFile,
    progress: &'a dyn Fn(u64),
) {
    let mut released = 0u64;
    loader.on_progress(move |written| {
        progress(written);
        if written >= released + RELEASE_EVERY {
            released = written;
            file.map().release();
        }
    });
}

/// The second pass: the planned file written in order into `stream`.
fn write_planned<'a>(
    stream: &mut Hashed<'_>,
    file: &'a SnapshotFile,
    root: &Bucket<'a>,
    compaction: Option<&Compaction>,
    load: LoadOptions,
    plan: &crate::bolt::LoadSummary,
) -> Result<(), RewriteError> {
    let mut loader = Loader::in_order(stream, load, plan)?;
    releasing(&mut loader, file, &|_| {});
    copy_root(&mut loader, root, compaction, None, &mut ())?;
    loader.finish()?;
    file.map().release();
    Ok(())
}

/// Opens the stored (not yet published) `TARGET.part`, checks it as
/// `snapshot verify` would and compares its status with the planned one.
fn check_written(target: &Path, rule: TargetVersion, planned: &Status) -> Result<(), RewriteError> {
    let part = crate::atomic_file::part_path(target);
    let f = File::open(&part).map_err(io_err("open", &part))?;
    let written = SnapshotFile::from_file(f, part.clone())?;
    let threads = crate::bolt::WalkOptions::default().threads;
    let (wdb, visitor, _) =
        crate::snapshot::walk_checked(&written, StatusVisitor::new(rule), threads)?;
    let status = visitor.finish(wdb.size()).map_err(SnapshotError::from)?;
    if let Some(stored) = written.trailer() {
        let computed = hash::body_sha256(&written, &|_| {}).map_err(io_err("read", &part))?;
        if let HashCheck::Mismatch { stored, computed } = HashCheck::compare(stored, computed) {
            return Err(RewriteError::HashMismatch { stored, computed });
        }
    }
    if &status != planned {
        return Err(RewriteError::NotAsPlanned {
            planned: Box::new(planned.clone()),
            written: Box::new(status),
        });
    }
    Ok(())
}

/// The destination as the loader sees it: every byte goes to the
/// location's writer and into the running SHA-256; it never seeks (asked
/// where it is, it says).
struct Hashed<'w> {
    out: &'w mut LocationWriter,
    hash: Sha256,
    pos: u64,
    /// The location's own error, kept for the report (the loader only
    /// sees an `io::Error`).
    failed: Option<LocationError>,
}

impl Write for Hashed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Err(e) = self.out.write_all(buf) {
            let shown = io::Error::other(e.to_string());
            self.failed = Some(e);
            return Err(shown);
        }
        self.hash.update(buf);
        self.pos += buf.len() as u64;
        crash_point();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Hashed<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match to {
            SeekFrom::Start(p) if p == self.pos => Ok(p),
            SeekFrom::Current(0) => Ok(self.pos),
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the destination is written in order",
            )),
        }
    }
}

/// Counts writes for `ETCDSNAP_TEST_REWRITE_CRASH_AFTER` (see the module
/// documentation); kills the process after the write it names.
fn crash_point() {
    static AFTER: OnceLock<Option<u64>> = OnceLock::new();
    static DONE: AtomicU64 = AtomicU64::new(0);
    let after = AFTER.get_or_init(|| {
        std::env::var("ETCDSNAP_TEST_REWRITE_CRASH_AFTER")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(n) = after
        && DONE.fetch_add(1, Ordering::SeqCst).saturating_add(1) == *n
    {
        // SIGKILL itself where the binary has a way to (nothing runs
        // after either; abort may leave a core file).
        #[cfg(any(feature = "cli", feature = "repo"))]
        let _ = signal_hook::low_level::raise(signal_hook::consts::SIGKILL);
        std::process::abort();
    }
}

/// Lays `db` (the database of `file`) out densely into `out` from its
/// start, through `compaction` if there is one, keeping the page size, the
/// freelist style, the txid and the root sequence of the source; returns
/// the length written and the `key` entries the compaction removed.
/// `progress` hears the bytes written so far. The source's map is released
/// as it goes, so the resident set does not grow with the file.
pub(crate) fn load_dense<'a>(
    file: &'a SnapshotFile,
    db: Db<'a>,
    out: &'a File,
    compaction: Option<&Compaction>,
    progress: &'a dyn Fn(u64),
) -> Result<(u64, u64), RewriteError> {
    load_edited(file, db, out, compaction, None, progress)
}

/// [`load_dense`], with recorded changes appended (see [`apply`]) when
/// there are some.
fn load_edited<'a>(
    file: &'a SnapshotFile,
    db: Db<'a>,
    out: &'a File,
    compaction: Option<&Compaction>,
    changes: Option<&mut apply::Applying<'_>>,
    progress: &'a dyn Fn(u64),
) -> Result<(u64, u64), RewriteError> {
    let mut loader = Loader::new(out, load_options(db))?;
    releasing(&mut loader, file, progress);
    let removed = copy_root(&mut loader, &db.root(), compaction, changes, &mut ())?;
    let (_, summary) = loader.finish()?;
    file.map().release();
    Ok((
        summary.pages.saturating_mul(u64::from(db.page_size())),
        removed,
    ))
}

/// A top-level bucket name with the source's bucket and its root entry
/// (`None`: a bucket the source lacks).
type Top<'a> = (&'a [u8], Option<(Bucket<'a>, LeafElem<'a>)>);

/// Copies the top-level buckets into the loader, the `key` and `meta`
/// buckets through the compaction if there is one, the `key` and `lease`
/// buckets through the recorded changes if there are some (creating the
/// buckets these need where the source has none); the `key` entries
/// removed. `seen` is shown every entry written at the top two levels, as
/// a walk of the result would show them (the status is taken so); with
/// recorded changes it is not told of the `key` and `lease` entries (the
/// apply takes the status from the written file instead).
fn copy_root<'a, W: Write + Seek, V: Visitor>(
    loader: &mut Loader<'a, W>,
    root: &Bucket<'a>,
    compaction: Option<&Compaction>,
    mut changes: Option<&mut apply::Applying<'_>>,
    seen: &mut V,
) -> Result<u64, RewriteError> {
    let mut tops: Vec<Top<'a>> = Vec::new();
    for e in root.iter() {
        let e = e?;
        if !e.is_bucket() {
            return Err(LoadError::RootValue {
                key: String::from_utf8_lossy(e.key).into_owned(),
            }
            .into());
        }
        let sub = root
            .bucket(e.key)?
            .ok_or_else(|| crate::bolt::BoltError::BucketValue {
                name: String::from_utf8_lossy(e.key).into_owned(),
                what: "bucket entry that does not open as a bucket".into(),
                offset: 0,
            })?;
        tops.push((e.key, Some((sub, e))));
    }
    let mut needed: Vec<&'static [u8]> = Vec::new();
    if compaction.is_some() {
        needed.push(buckets::META);
    }
    if changes.is_some() {
        needed.extend([buckets::KEY, buckets::LEASE]);
    }
    for name in needed {
        if !tops.iter().any(|(k, _)| *k == name) {
            tops.push((name, None));
        }
    }
    tops.sort_by(|a, b| a.0.cmp(b.0));
    let mut removed = 0;
    for (name, top) in tops {
        let (sub, elem) = match top {
            Some((sub, e)) => (Some(sub), e),
            // A bucket the source lacks, made where it belongs.
            None => (
                None,
                LeafElem {
                    flags: crate::bolt::LEAF_FLAG_BUCKET,
                    key: name,
                    value: &[],
                },
            ),
        };
        if let Some(c) = compaction.filter(|_| name == buckets::META) {
            write_meta(loader, sub.as_ref(), c, seen)?;
            continue;
        }
        seen.entry(&[], &elem);
        loader.begin_bucket(name, sub.as_ref().map_or(0, Bucket::sequence))?;
        match (sub, changes.as_deref_mut()) {
            (sub, Some(ch)) if name == buckets::KEY => {
                removed = ch.write_key(loader, sub.as_ref(), compaction)?;
            }
            (sub, Some(ch)) if name == buckets::LEASE => ch.write_lease(loader, sub.as_ref())?,
            (Some(sub), _) if name == buckets::KEY && compaction.is_some() => {
                removed = copy_compacted(loader, &sub, compaction, seen, |_, _| Ok(true))?;
            }
            (Some(sub), _) => copy_top(loader, &sub, name, seen)?,
            (None, _) => {}
        }
        loader.end_bucket()?;
    }
    Ok(removed)
}

/// A top-level bucket's entries (nested buckets whole), shown to `seen`.
fn copy_top<'a, W: Write + Seek, V: Visitor>(
    loader: &mut Loader<'a, W>,
    bucket: &Bucket<'a>,
    name: &[u8],
    seen: &mut V,
) -> Result<(), RewriteError> {
    crate::bolt::load::copy_bucket_showing(loader, bucket, |e| seen.entry(&[name], e))
        .map_err(from_copy)?;
    Ok(())
}

/// The `meta` bucket (`existing`'s entries, if any) with the compaction
/// recorded as etcd records it.
fn write_meta<'a, W: Write + Seek, V: Visitor>(
    loader: &mut Loader<'a, W>,
    existing: Option<&Bucket<'a>>,
    c: &Compaction,
    seen: &mut V,
) -> Result<(), RewriteError> {
    let mut entries: BTreeMap<Cow<'a, [u8]>, Cow<'a, [u8]>> = BTreeMap::new();
    if let Some(b) = existing {
        for e in b.iter() {
            let e = e?;
            if e.is_bucket() {
                return Err(MvccError::BadRecord {
                    bucket: "meta",
                    key: String::from_utf8_lossy(e.key).into_owned(),
                    what: "a nested bucket".into(),
                }
                .into());
            }
            entries.insert(Cow::Borrowed(e.key), Cow::Borrowed(e.value));
        }
    }
    let v = c.meta_value().to_vec();
    entries.insert(
        Cow::Borrowed(meta::SCHEDULED_COMPACT_REV),
        Cow::Owned(v.clone()),
    );
    entries.insert(Cow::Borrowed(meta::FINISHED_COMPACT_REV), Cow::Owned(v));
    let sequence = existing.map_or(0, Bucket::sequence);
    seen.entry(
        &[],
        &LeafElem {
            flags: crate::bolt::LEAF_FLAG_BUCKET,
            key: buckets::META,
            value: &[],
        },
    );
    loader.begin_bucket(buckets::META, sequence)?;
    for (k, v) in entries {
        seen.entry(
            &[buckets::META],
            &LeafElem {
                flags: 0,
                key: &k,
                value: &v,
            },
        );
        loader.put(k, v)?;
    }
    loader.end_bucket()?;
    Ok(())
}

/// The `key` bucket without the entries the compaction (if any) removes
/// and those `keep` (told each entry's position and element) refuses, the
/// entries kept shown to `seen`; the number of entries left out.
fn copy_compacted<'a, W: Write + Seek, V: Visitor>(
    loader: &mut Loader<'a, W>,
    key: &Bucket<'a>,
    c: Option<&Compaction>,
    seen: &mut V,
    mut keep: impl FnMut(u64, &LeafElem<'a>) -> Result<bool, RewriteError>,
) -> Result<u64, RewriteError> {
    let mut removed = 0;
    for (index, e) in key.iter().enumerate() {
        let e = e?;
        if e.is_bucket() {
            return Err(MvccError::BadEntry {
                rev_key: crate::go::hex::encode(e.key),
                offset: 0,
                what: "a nested bucket where a revision belongs".into(),
            }
            .into());
        }
        let index = index as u64;
        if keep(index, &e)? && c.is_none_or(|c| c.keeps(index)) {
            seen.entry(&[buckets::KEY], &e);
            loader.put(e.key, e.value)?;
        } else {
            removed += 1;
        }
    }
    Ok(removed)
}
