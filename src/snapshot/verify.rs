//! `snapshot verify`: the SHA-256 trailer, both meta pages, the structural
//! check and the etcd-level checks, in one pass over the file (the hash on
//! one thread, the walk on the others).

use std::path::PathBuf;

use super::file::SnapshotFile;
use super::hash::{self, HashCheck};
use crate::bolt::check::{self, CheckOptions, CheckReport};
use crate::bolt::{BoltError, Db};
use crate::etcd::{SchemaChecks, SchemaProblem, Status, StatusVisitor, TargetVersion};
use crate::progress::{Phase, Progress};

/// How to verify.
///
/// ```
/// use etcdsnap::{TargetVersion, VerifyOptions};
/// let opts = VerifyOptions::default()
///     .with_skip_hash_check(true)
///     .with_target(TargetVersion::V3_4)
///     .with_threads(1);
/// assert!(opts.skip_hash_check);
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// Do not compare the SHA-256 trailer (raw db copies have none).
    pub skip_hash_check: bool,
    /// Whose rules the status in the report follows.
    pub target: TargetVersion,
    /// Threads to use in all (at least 1).
    pub threads: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            skip_hash_check: false,
            target: TargetVersion::default(),
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

    /// Whose rules the status in the report follows.
    pub fn with_target(mut self, target: TargetVersion) -> Self {
        self.target = target;
        self
    }

    /// Threads to use in all (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

/// What the active meta page says about the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Things worth knowing that do not make the snapshot unusable: a
    /// damaged meta page that was not used because the other one is valid
    /// (bbolt falls back to it, losing at most the last transaction).
    pub warnings: Vec<String>,
    /// `hwm * page size` when it exceeds the body: the file is truncated.
    pub truncated: Option<u64>,
    /// The structural check.
    pub check: CheckReport,
    /// etcd-level problems.
    pub schema: Vec<SchemaProblem>,
    /// etcd-level problems not kept.
    pub schema_omitted: u64,
    /// The status, when everything else is sound.
    pub status: Option<Status>,
    /// Why there is no status although the structure is sound.
    pub status_error: Option<String>,
}

impl VerifyReport {
    /// Whether the snapshot is sound.
    pub fn is_ok(&self) -> bool {
        self.problems().is_empty()
    }

    /// One line per problem, most fundamental first.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.hash {
            HashCheck::Mismatch { stored, computed } => out.push(format!(
                "sha256 mismatch: expected sha256 {}, got {} (the trailer does not match the content)",
                hash::hex(&stored),
                hash::hex(&computed)
            )),
            HashCheck::Missing if self.truncated.is_none() => out.push(
                "snapshot missing hash but --skip-hash-check=false (the file has no SHA-256 trailer: a raw member/snap/db copy needs --skip-hash-check)"
                    .into(),
            ),
            _ => {}
        }
        if let Some(e) = &self.open_error {
            out.push(format!("not a bbolt database: {e}"));
        }
        if let Some(needed) = self.truncated {
            let have = self.file_size;
            out.push(format!(
                "truncated file: the database needs {needed} bytes but the file has {have}"
            ));
        }
        out.extend(self.check.problems.iter().map(|p| p.to_string()));
        if self.check.omitted > 0 {
            out.push(format!(
                "... and {} more structural problems",
                self.check.omitted
            ));
        }
        out.extend(self.schema.iter().map(|p| p.to_string()));
        if self.schema_omitted > 0 {
            out.push(format!(
                "... and {} more etcd-level problems",
                self.schema_omitted
            ));
        }
        if let Some(e) = &self.status_error {
            out.push(e.clone());
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
        check: CheckReport::default(),
        schema: Vec::new(),
        schema_omitted: 0,
        status: None,
        status_error: None,
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
        structure(file, opts.target, walk_threads, &mut report);
        if let Some(h) = hasher {
            report.hash = match h.join() {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => {
                    report.status_error = Some(format!("reading the file to hash it: {e}"));
                    HashCheck::Missing
                }
                Err(_) => HashCheck::Missing,
            };
        }
    });
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
    for (i, m) in db.metas().iter().enumerate() {
        if let Err(e) = m {
            report.warnings.push(format!(
                "meta page {i}: {e} (bbolt uses meta page {} instead)",
                db.active_meta_page()
            ));
        }
    }
    if db.size() > file.body_len() {
        report.truncated = Some(db.size());
    }
    let release = || file.map().release();
    let opts = CheckOptions {
        threads,
        release: Some(&release),
        ..CheckOptions::default()
    };
    let (check, (status, schema)) =
        check::walk(db, (StatusVisitor::new(target), SchemaChecks::new()), &opts);
    let (schema, omitted) = schema.finish();
    report.check = check;
    report.schema = schema;
    report.schema_omitted = omitted;
    if report.check.is_ok() {
        match status.finish(db.size()) {
            Ok(s) => report.status = Some(s),
            Err(e) => report.status_error = Some(e.to_string()),
        }
    }
}
