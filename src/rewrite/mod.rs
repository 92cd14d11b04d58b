//! Rewriting a snapshot into a new, densely packed one: what
//! `etcdutl defrag` does to a data dir (every bucket copied in key order
//! into a fresh file at fill percent 0.9), optionally after applying
//! etcd's compaction at a revision (`etcdctl compact`), without booting
//! etcd.
//!
//! The new file is laid out by the bulk [`Loader`](crate::bolt::Loader)
//! into an unnamed temporary file (in the destination's directory, or the
//! location's temporary directory), checked, hashed as it is stored, and
//! published under its name with a SHA-256 trailer only when complete: a
//! rewrite that fails or is killed leaves the destination as it was.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use etcdsnap::{Location, RewriteOptions, Snapshot, rewrite};
//!
//! let dir = tempfile::tempdir()?;
//! let out = dir.path().join("compacted.db");
//! let src = Snapshot::open("testdata/snapshots/small-v35.db")?;
//! let opts = RewriteOptions { compact: Some(0), ..RewriteOptions::default() };
//! let done = rewrite(&src, &Location::parse(out.to_str().unwrap())?, &opts)?;
//! assert_eq!(done.compacted, Some(4));
//! let snap = Snapshot::open(&out)?;
//! assert!(snap.verify(&Default::default()).is_ok());
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::bolt::{Bucket, CopyError, Db, LoadError, LoadOptions, Loader, copy_bucket};
use crate::etcd::{Status, StatusVisitor, TargetVersion, buckets, meta};
use crate::location::{Location, LocationError};
use crate::mvcc::{Compaction, MvccError, Store};
use crate::snapshot::file::SnapshotFile;
use crate::snapshot::hash::{self, HashCheck};
use crate::snapshot::{Snapshot, SnapshotError};

/// Bytes written between two releases of the source's map (so that the
/// resident set does not grow with the file).
const RELEASE_EVERY: u64 = 32 << 20;
/// Bytes read per step when the finished file is stored.
const CHUNK: usize = 1 << 20;

/// What to do to the snapshot besides packing it densely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// What a rewrite wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The source could not be copied into the new file.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// The result could not be stored or published.
    #[error(transparent)]
    Location(#[from] LocationError),
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
        RewriteError::Copy(CopyError::Load(e))
    }
}

impl From<crate::bolt::BoltError> for RewriteError {
    fn from(e: crate::bolt::BoltError) -> Self {
        RewriteError::Copy(CopyError::Read(e))
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
    // A damaged source must not come out with a fresh, valid trailer.
    if let Some(stored) = src.trailer() {
        let computed = hash::body_sha256(file, &|_| {}).map_err(io_err("read", src.path()))?;
        if let HashCheck::Mismatch { stored, computed } = HashCheck::compare(stored, computed) {
            return Err(RewriteError::HashMismatch { stored, computed });
        }
    }
    let compaction = match opts.compact {
        Some(rev) => {
            let store = Store::open(src).map_err(|e| match e {
                crate::mvcc::OpenError::Snapshot(e) => RewriteError::Snapshot(e),
                crate::mvcc::OpenError::Mvcc(e) => RewriteError::Mvcc(e),
            })?;
            Some(store.with_rules(opts.target).compaction(rev)?)
        }
        None => None,
    };
    let dir = match out.local_path() {
        Some(p) => match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        },
        None => out.options().temp_dir(),
    };
    let tmp = tempfile::tempfile_in(&dir).map_err(io_err("create a temporary file in", &dir))?;
    let (body_len, removed) = load_dense(file, db, &tmp, compaction.as_ref(), &|_| {})?;

    // The result is checked (and its status taken) before anyone sees it.
    let shown = PathBuf::from(out.as_str());
    let written = SnapshotFile::from_file(
        tmp.try_clone().map_err(io_err("reopen", &dir))?,
        shown.clone(),
    )?;
    let threads = crate::bolt::WalkOptions::default().threads;
    let (wdb, visitor, _) =
        crate::snapshot::walk_checked(&written, StatusVisitor::new(opts.target), threads)?;
    let status = visitor.finish(wdb.size()).map_err(SnapshotError::from)?;
    drop(written);

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
    Ok(RewriteSummary {
        location,
        size_before: src.file_len(),
        size_after: body_len + digest.len() as u64,
        compacted: compaction.as_ref().map(Compaction::revision),
        removed,
        status,
    })
}

/// Lays `db` (the database of `file`) out densely into `out` from its
/// start, through `compaction` if there is one, keeping the page size, the
/// freelist style, the txid and the root sequence of the source; returns
/// the length written and the `key` entries the compaction removed.
/// `progress` hears the bytes written so far. The source's map is released
/// as it goes, so the resident set does not grow with the file.
pub(crate) fn load_dense(
    file: &SnapshotFile,
    db: Db<'_>,
    out: &File,
    compaction: Option<&Compaction>,
    progress: &dyn Fn(u64),
) -> Result<(u64, u64), RewriteError> {
    let load = LoadOptions {
        page_size: db.page_size(),
        freelist: db.meta().has_synced_freelist(),
        txid: db.meta().txid,
        root_sequence: db.meta().sequence,
        ..LoadOptions::default()
    };
    let mut loader = Loader::new(out, load)?;
    let mut released = 0u64;
    loader.on_progress(move |written| {
        progress(written);
        if written >= released + RELEASE_EVERY {
            released = written;
            file.map().release();
        }
    });
    let removed = copy_root(&mut loader, &db.root(), compaction)?;
    let (_, summary) = loader.finish()?;
    file.map().release();
    Ok((
        summary.pages.saturating_mul(u64::from(db.page_size())),
        removed,
    ))
}

/// Copies the top-level buckets into the loader, the `key` and `meta`
/// buckets through the compaction if there is one; the entries removed.
fn copy_root<'a>(
    loader: &mut Loader<'a, &File>,
    root: &Bucket<'a>,
    compaction: Option<&Compaction>,
) -> Result<u64, RewriteError> {
    let mut removed = 0;
    let mut meta_done = compaction.is_none();
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
        match compaction {
            Some(c) if e.key > buckets::META && !meta_done => {
                // No meta bucket: it is made where it belongs.
                write_meta(loader, None, c)?;
                meta_done = true;
            }
            _ => {}
        }
        if let Some(c) = compaction.filter(|_| e.key == buckets::META) {
            write_meta(loader, Some(&sub), c)?;
            meta_done = true;
            continue;
        }
        loader.begin_bucket(e.key, sub.sequence())?;
        match compaction {
            Some(c) if e.key == buckets::KEY => removed = copy_compacted(loader, &sub, c)?,
            _ => copy_bucket(loader, &sub)?,
        }
        loader.end_bucket()?;
    }
    if let (Some(c), false) = (compaction, meta_done) {
        write_meta(loader, None, c)?;
    }
    Ok(removed)
}

/// The `meta` bucket (`existing`'s entries, if any) with the compaction
/// recorded as etcd records it.
fn write_meta<'a>(
    loader: &mut Loader<'a, &File>,
    existing: Option<&Bucket<'a>>,
    c: &Compaction,
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
    loader.begin_bucket(buckets::META, sequence)?;
    for (k, v) in entries {
        loader.put(k, v)?;
    }
    loader.end_bucket()?;
    Ok(())
}

/// The `key` bucket without the entries the compaction removes; their
/// number.
fn copy_compacted<'a>(
    loader: &mut Loader<'a, &File>,
    key: &Bucket<'a>,
    c: &Compaction,
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
        if c.keeps(index as u64) {
            loader.put(e.key, e.value)?;
        } else {
            removed += 1;
        }
    }
    Ok(removed)
}
