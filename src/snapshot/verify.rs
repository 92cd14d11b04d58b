//! `snapshot verify`: the SHA-256 trailer, both meta pages, the structural
//! check and the etcd-level checks, in one pass over the file (the hash on
//! one thread, the walk on the others).

use std::fmt;
use std::path::PathBuf;

use super::file::SnapshotFile;
use super::hash::{self, HashCheck};
use crate::bolt::check::{self, Problem, WalkOptions, WalkReport};
use crate::bolt::meta::MetaError;
use crate::bolt::{BoltError, Db};
use crate::etcd::checks::SchemaFindings;
use crate::etcd::version::{TargetChoice, UnknownVersion};
use crate::etcd::{SchemaChecks, SchemaProblem, Status, StatusError, StatusVisitor, TargetVersion};
use crate::progress::{Phase, Progress};

/// How to verify.
///
/// ```
/// use etcdsnap::{TargetVersion, VerifyOptions};
/// let opts = VerifyOptions::default()
///     .with_skip_hash_check(true)
///     .with_target(TargetVersion::V3_4) // or TargetChoice::Auto, the default
///     .with_threads(1);
/// assert!(opts.skip_hash_check);
///
/// // By default the rules follow the snapshot's storage version.
/// let snap = etcdsnap::Snapshot::open("testdata/snapshots/small-v36.db")?;
/// let report = snap.verify(&VerifyOptions::default());
/// assert_eq!(report.status.map(|s| s.target), Some(TargetVersion::V3_6));
/// # Ok::<(), etcdsnap::SnapshotError>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Do not compare the SHA-256 trailer (raw db copies have none).
    pub skip_hash_check: bool,
    /// Whose rules the status and the etcd-level checks follow; `Auto`
    /// (the default) follows the snapshot's storage version.
    pub target: TargetChoice,
    /// Threads to use in all (at least 1).
    pub threads: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            skip_hash_check: false,
            target: TargetChoice::Auto,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

impl VerifyOptions {
    /// Whether to skip the SHA-256 trailer (raw `member/snap/db` copies).
    pub fn with_skip_hash_check(mut self, skip: bool) -> Self {
        self.skip_hash_check = skip;
        self
    }

    /// Whose rules the status and the etcd-level checks follow (a
    /// [`TargetVersion`] or [`TargetChoice::Auto`]).
    pub fn with_target(mut self, target: impl Into<TargetChoice>) -> Self {
        self.target = target.into();
        self
    }

    /// Threads to use in all (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

/// What the active meta page says about the database.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DbInfo {
    /// Page size in bytes.
    pub page_size: u32,
    /// Transaction id of the active meta.
    pub txid: u64,
    /// High-water mark (pages).
    pub hwm: u64,
    /// Which meta page is active (0 or 1).
    pub active_meta: u8,
    /// Whether a freelist page is stored (false for etcd's NoFreelistSync).
    pub synced_freelist: bool,
}

/// Something that makes the snapshot unusable; `Display` is the line
/// `snapshot verify` prints.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VerifyProblem {
    /// The SHA-256 trailer does not match the body.
    HashMismatch {
        /// Digest stored in the file.
        stored: [u8; 32],
        /// Digest of the body.
        computed: [u8; 32],
    },
    /// No trailer, and the hash was to be checked.
    MissingHash,
    /// The body is not a bbolt database.
    NotBbolt(BoltError),
    /// The file is shorter than the database its meta describes.
    Truncated {
        /// `hwm * page size`.
        needed: u64,
        /// The file's length.
        have: u64,
    },
    /// A structural problem.
    Structure(Problem),
    /// Structural problems found beyond those kept.
    MoreStructure(u64),
    /// An etcd-level error.
    Schema(SchemaProblem),
    /// etcd-level errors found beyond those kept.
    MoreSchema(u64),
    /// The file could not be read to hash it.
    HashRead(String),
    /// The file changed (shrank, or was rewritten) while it was read.
    Changed(String),
}

impl fmt::Display for VerifyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyProblem::HashMismatch { stored, computed } => write!(
                f,
                "sha256 mismatch: expected sha256 {}, got {} (the trailer does not match the content)",
                hash::hex(stored),
                hash::hex(computed)
            ),
            VerifyProblem::MissingHash => {
                f.write_str("snapshot missing hash but --skip-hash-check=false")
            }
            VerifyProblem::NotBbolt(e) => write!(f, "not a bbolt database: {e}"),
            VerifyProblem::Truncated { needed, have } => write!(
                f,
                "truncated file: the database needs {needed} bytes but the file has {have}"
            ),
            VerifyProblem::Structure(p) => p.fmt(f),
            VerifyProblem::MoreStructure(n) => write!(f, "... and {n} more structural problems"),
            VerifyProblem::Schema(p) => p.fmt(f),
            VerifyProblem::MoreSchema(n) => write!(f, "... and {n} more etcd-level problems"),
            VerifyProblem::HashRead(e) => write!(f, "reading the file to hash it: {e}"),
            VerifyProblem::Changed(e) => e.fmt(f),
        }
    }
}

/// Something worth knowing that does not make the snapshot unusable;
/// `Display` is the text `snapshot verify` prints after `warning: `.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VerifyWarning {
    /// A damaged meta page that is not used because the other one is valid
    /// (bbolt falls back to it, losing at most the last transaction).
    InactiveMeta {
        /// The damaged meta page (0 or 1).
        page: u8,
        /// Why it was rejected.
        error: MetaError,
        /// The meta page used instead.
        active: u8,
    },
    /// The meta page not in use declares another page size than the file
    /// is read with (bbolt's next commit overwrites it).
    InactiveMetaPageSize {
        /// The meta page (0 or 1).
        page: u8,
        /// The page size it declares.
        declared: u32,
        /// The page size the file is read with.
        used: u32,
    },
    /// An etcd-level finding that restore replaces or etcd tolerates.
    Schema(SchemaProblem),
    /// etcd-level warnings found beyond those kept.
    MoreSchema(u64),
    /// The structure is sound but `snapshot status` cannot describe the
    /// file (etcdutl's status fails on it too); etcd itself ignores what
    /// stops it (a top-level key that is not a bucket, a key etcd skips).
    Status(StatusError),
    /// `auto` was asked for and the snapshot's storage version names a
    /// release newer than any this crate knows: the newest known release's
    /// rules were followed.
    UnknownStorageVersion(UnknownVersion),
}

impl fmt::Display for VerifyWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyWarning::InactiveMeta {
                page,
                error,
                active,
            } => write!(
                f,
                "meta page {page}: {error} (bbolt uses meta page {active} instead)"
            ),
            VerifyWarning::InactiveMetaPageSize {
                page,
                declared,
                used,
            } => write!(
                f,
                "meta page {page} declares page size {declared}, but the file is read with page size {used} (it is not in use; bbolt's next commit overwrites it)"
            ),
            VerifyWarning::Schema(p) => p.fmt(f),
            VerifyWarning::MoreSchema(n) => write!(f, "... and {n} more etcd-level warnings"),
            VerifyWarning::UnknownStorageVersion(v) => write!(
                f,
                "the snapshot's storage version {} is newer than any target version etcdsnap knows; checked by {}'s rules",
                v.0,
                TargetVersion::V3_7
            ),
            VerifyWarning::Status(e) => write!(
                f,
                "snapshot status cannot describe this file: {e} (etcdutl's status fails on it too)"
            ),
        }
    }
}

/// Everything `verify` found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The file checked.
    pub path: PathBuf,
    /// Its length.
    pub file_size: u64,
    /// The trailer check.
    pub hash: HashCheck,
    /// Why the bytes could not be opened as bbolt, if they could not.
    pub open_error: Option<BoltError>,
    /// The database's layout, when it could be opened.
    pub db_info: Option<DbInfo>,
    /// Things worth knowing that do not make the snapshot unusable.
    pub warnings: Vec<VerifyWarning>,
    /// `hwm * page size` when it exceeds the body: the file is truncated.
    pub truncated: Option<u64>,
    /// The structural check.
    pub check: WalkReport,
    /// etcd-level findings, errors and warnings.
    pub schema: SchemaFindings,
    /// The status, when everything else is sound.
    pub status: Option<Status>,
    /// Why there is no status although the structure is sound.
    pub status_error: Option<StatusError>,
    /// Why the file could not be read to hash it.
    pub read_error: Option<String>,
    /// The file changed while it was being verified.
    pub changed: Option<String>,
}

impl VerifyReport {
    /// Whether the snapshot is sound.
    pub fn is_ok(&self) -> bool {
        // Exactly when `problems()` is empty, without building it: a
        // missing hash is a problem unless truncation or a read error is
        // reported instead, and those are problems too.
        self.changed.is_none()
            && matches!(self.hash, HashCheck::Verified(_) | HashCheck::Skipped)
            && self.open_error.is_none()
            && self.truncated.is_none()
            && self.check.is_ok()
            && self.schema.is_ok()
            && self.read_error.is_none()
    }

    /// Every problem, most fundamental first. When the file changed while
    /// it was read, that is the only problem: the rest would describe a
    /// mixture of old and new contents.
    pub fn problems(&self) -> Vec<VerifyProblem> {
        let mut out = Vec::new();
        if let Some(c) = &self.changed {
            out.push(VerifyProblem::Changed(c.clone()));
            return out;
        }
        match self.hash {
            HashCheck::Mismatch { stored, computed } => {
                out.push(VerifyProblem::HashMismatch { stored, computed })
            }
            HashCheck::Missing if self.truncated.is_none() && self.read_error.is_none() => {
                out.push(VerifyProblem::MissingHash)
            }
            _ => {}
        }
        if let Some(e) = &self.open_error {
            out.push(VerifyProblem::NotBbolt(e.clone()));
        }
        if let Some(needed) = self.truncated {
            out.push(VerifyProblem::Truncated {
                needed,
                have: self.file_size,
            });
        }
        out.extend(
            self.check
                .problems
                .iter()
                .cloned()
                .map(VerifyProblem::Structure),
        );
        if self.check.omitted > 0 {
            out.push(VerifyProblem::MoreStructure(self.check.omitted));
        }
        out.extend(self.schema.errors().cloned().map(VerifyProblem::Schema));
        if self.schema.omitted_errors > 0 {
            out.push(VerifyProblem::MoreSchema(self.schema.omitted_errors));
        }
        if let Some(e) = &self.read_error {
            out.push(VerifyProblem::HashRead(e.clone()));
        }
        out
    }

    /// Every warning: inactive meta pages, then etcd-level warnings (only
    /// when the structure is sound: in a damaged tree they say little).
    pub fn all_warnings(&self) -> Vec<VerifyWarning> {
        if self.changed.is_some() {
            return Vec::new();
        }
        let mut out = self.warnings.clone();
        if !self.check.is_ok() || self.open_error.is_some() {
            return out;
        }
        out.extend(self.schema.warnings().cloned().map(VerifyWarning::Schema));
        let omitted = self
            .schema
            .omitted
            .saturating_sub(self.schema.omitted_errors);
        if omitted > 0 {
            out.push(VerifyWarning::MoreSchema(omitted));
        }
        if let Some(e) = &self.status_error {
            out.push(VerifyWarning::Status(e.clone()));
        }
        out
    }
}

/// Verifies an open snapshot file, reporting the hash's progress.
pub fn verify(
    file: &SnapshotFile,
    opts: &VerifyOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> VerifyReport {
    let mut report = VerifyReport {
        path: file.path().to_path_buf(),
        file_size: file.len(),
        hash: HashCheck::Skipped,
        open_error: None,
        db_info: None,
        warnings: Vec::new(),
        truncated: None,
        check: WalkReport::default(),
        schema: SchemaFindings::default(),
        status: None,
        status_error: None,
        read_error: None,
        changed: None,
    };
    let want_hash = !opts.skip_hash_check;
    let trailer = file.trailer();
    std::thread::scope(|s| {
        let hasher = match (want_hash, trailer) {
            (true, Some(stored)) => Some(s.spawn(move || {
                let total = file.body_len();
                hash::body_sha256(file, &|done| {
                    progress(Progress::new(Phase::Hash, done, total))
                })
                .map(|computed| HashCheck::compare(stored, computed))
            })),
            _ => None,
        };
        if want_hash && trailer.is_none() {
            report.hash = HashCheck::Missing;
        }
        let walk_threads = opts
            .threads
            .saturating_sub(usize::from(hasher.is_some()))
            .max(1);
        // `auto` on a release newer than any known: the newest rules, and
        // a warning that they may not be the snapshot's.
        let target = file.resolve_target(opts.target).unwrap_or_else(|e| {
            report
                .warnings
                .push(VerifyWarning::UnknownStorageVersion(e));
            TargetVersion::V3_7
        });
        structure(file, target, walk_threads, &mut report);
        if let Some(h) = hasher {
            report.hash = match h.join() {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => {
                    report.read_error = Some(e.to_string());
                    HashCheck::Missing
                }
                Err(_) => HashCheck::Missing,
            };
        }
    });
    report.changed = file.changed().map(|e| e.to_string());
    report
}

fn structure(
    file: &SnapshotFile,
    target: TargetVersion,
    threads: usize,
    report: &mut VerifyReport,
) {
    let db = match Db::open(file.body()) {
        Ok(db) => db,
        Err(e) => {
            report.open_error = Some(e);
            return;
        }
    };
    report.db_info = Some(DbInfo {
        page_size: db.page_size(),
        txid: db.meta().txid,
        hwm: db.hwm(),
        active_meta: db.active_meta_page(),
        synced_freelist: db.meta().has_synced_freelist(),
    });
    for (page, m) in (0u8..).zip(db.metas().iter()) {
        match m {
            Err(error) => report.warnings.push(VerifyWarning::InactiveMeta {
                page,
                error: *error,
                active: db.active_meta_page(),
            }),
            Ok(m) if page != db.active_meta_page() && m.page_size != db.page_size() => {
                report.warnings.push(VerifyWarning::InactiveMetaPageSize {
                    page,
                    declared: m.page_size,
                    used: db.page_size(),
                })
            }
            Ok(_) => {}
        }
    }
    if db.size() > file.body_len() {
        report.truncated = Some(db.size());
    }
    let release = || file.map().release();
    let opts = WalkOptions::default()
        .with_threads(threads)
        .with_release(&release);
    let visitors = (StatusVisitor::new(target), SchemaChecks::for_target(target));
    let (check, (status, schema)) = check::walk(db, visitors, &opts);
    report.schema = if check.is_ok() {
        schema.finish_report()
    } else {
        schema.finish_incomplete()
    };
    report.check = check;
    if report.check.is_ok() {
        match status.finish(db.size()) {
            Ok(s) => report.status = Some(s),
            Err(e) => report.status_error = Some(e),
        }
    }
}
